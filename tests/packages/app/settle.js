// A check's outcome as plain data (it crosses postMessage and page.evaluate).
export async function settle(promise) {
  try {
    return { ok: true, ...(await promise) };
  } catch (err) {
    return { ok: false, error: `${err?.code ?? err?.name ?? 'Error'}: ${err?.message ?? err}` };
  }
}

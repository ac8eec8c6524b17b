// Applies www-demo/schema.sql to a KalamDB server as an admin: the demo namespace, tables,
// users and topic. Safe to run again and again: "already exists" answers are expected.
// Plain fetch only, so it runs on any Node 18+ without the packages being built.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The demo's people and the worker's service account (passwords overridable by env). */
export function demoUsers(env = process.env) {
  return {
    people: [
      { id: 'alice', name: 'Alice', password: env.DEMO_ALICE_PASSWORD ?? 'alice-demo-1', color: '#6d5dfc' },
      { id: 'bob', name: 'Bob', password: env.DEMO_BOB_PASSWORD ?? 'bob-demo-1', color: '#0ea5a4' },
    ],
    bot: { id: 'kalam-bot', name: 'Kalam Bot', password: env.DEMO_BOT_PASSWORD ?? 'kalam-bot-demo-1' },
  };
}

/** The statements of schema.sql with the user placeholders filled in. */
export function schemaStatements(users) {
  const values = {
    ALICE_USER: users.people[0].id, ALICE_PASSWORD: users.people[0].password,
    BOB_USER: users.people[1].id, BOB_PASSWORD: users.people[1].password,
    BOT_USER: users.bot.id, BOT_PASSWORD: users.bot.password,
  };
  const text = readFileSync(join(here, '..', 'schema.sql'), 'utf8')
    .split('\n').filter((line) => !line.trim().startsWith('--')).join('\n')
    .replace(/\$\{(\w+)\}/g, (_, k) => {
      const v = values[k];
      if (v === undefined) throw new Error(`schema.sql: unknown placeholder ${k}`);
      return String(v).replaceAll("'", "''");
    });
  return text.split(';').map((s) => s.trim()).filter(Boolean);
}

async function post(url, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = { raw: text }; }
  return { status: res.status, json };
}

export async function loginToken(url, user, password) {
  const { status, json } = await post(url, '/v1/api/auth/login', { user, password });
  if (status !== 200 || !json.access_token) {
    throw new Error(`cannot sign in to ${url} as ${user}: ${status} ${json.message ?? json.error ?? JSON.stringify(json)}`);
  }
  return json.access_token;
}

/** Runs every schema statement as `admin`; returns { applied, existed }. */
export async function seed({ url, adminUser, adminPassword, users = demoUsers(), log = () => {} }) {
  const token = await loginToken(url, adminUser, adminPassword);
  let applied = 0;
  let existed = 0;
  for (const sql of schemaStatements(users)) {
    const { status, json } = await post(url, '/v1/api/sql', { sql }, token);
    const message = json.error?.message ?? json.message ?? '';
    if (status === 200 && json.status === 'success') {
      const text = json.results?.[0]?.message ?? '';
      if (/already exists/i.test(text)) existed += 1; else applied += 1;
      log(`  ok      ${sql.split('\n')[0].slice(0, 70)}`);
    } else if (/already exists/i.test(message)) {
      existed += 1;
      log(`  exists  ${sql.split('\n')[0].slice(0, 70)}`);
    } else {
      throw new Error(`seeding failed (${status}) on:\n${sql}\n${message || JSON.stringify(json)}`);
    }
  }
  return { applied, existed };
}

// The client for the hooks below: from <KalamProvider client={...}>, or per hook (`client`).
import { createContext, createElement, useContext, type ReactNode } from 'react';
import { ErrorCode, KalamError, type KalamDBClient } from '@kalam-wasm/client';

const KalamContext = createContext<KalamDBClient | null>(null);

export interface KalamProviderProps {
  client: KalamDBClient;
  children?: ReactNode;
}

/** Makes `client` the default of every hook and component below it. */
export function KalamProvider({ client, children }: KalamProviderProps) {
  return createElement(KalamContext.Provider, { value: client }, children);
}

/** The client given to the hook, else the nearest provider's; throws INVALID_ARGUMENT if none. */
export function useKalamClient(client?: KalamDBClient): KalamDBClient {
  const fromContext = useContext(KalamContext);
  const found = client ?? fromContext;
  if (!found) {
    throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: 'no KalamDB client: wrap the tree in <KalamProvider client={client}> or pass `client`' });
  }
  return found;
}

import { KalamError } from './errors.js';

// Credentials for createClient/createConsumerClient. Basic credentials are only ever sent to
// POST /v1/api/auth/login and exchanged for a JWT; every other request carries the JWT.

export interface BasicAuthCredentials { type: 'basic'; user: string; password: string }
export interface JwtAuthCredentials { type: 'jwt'; token: string }
export interface NoAuthCredentials { type: 'none' }
export type AuthCredentials = BasicAuthCredentials | JwtAuthCredentials | NoAuthCredentials;

/** Called whenever the client needs credentials: first use, token expiry, reconnect. */
export type AuthProvider = () => AuthCredentials | Promise<AuthCredentials>;

export const Auth = {
  basic(user: string, password: string): BasicAuthCredentials {
    return { type: 'basic', user, password };
  },
  jwt(token: string): JwtAuthCredentials {
    return { type: 'jwt', token };
  },
  none(): NoAuthCredentials {
    return { type: 'none' };
  },
};

export function isBasicAuth(a: AuthCredentials | null | undefined): a is BasicAuthCredentials {
  return a?.type === 'basic';
}
export function isJwtAuth(a: AuthCredentials | null | undefined): a is JwtAuthCredentials {
  return a?.type === 'jwt';
}
export function isNoAuth(a: AuthCredentials | null | undefined): a is NoAuthCredentials {
  return a?.type === 'none';
}

export interface LoginUserInfo {
  id: string;
  role: 'user' | 'service' | 'dba' | 'system' | string;
  email: string | null;
  created_at: string;
  updated_at: string;
}

export interface LoginResponse {
  user: LoginUserInfo;
  admin_ui_access: boolean;
  expires_at: string;
  access_token: string;
  refresh_token?: string;
  refresh_expires_at?: string;
}

/** Base64 of `user:password` (UTF-8), as in an HTTP Basic header. */
export function encodeBasicAuth(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * The `Authorization` value for credentials: `Bearer <token>` for JWT, undefined for none.
 * Basic credentials throw: KalamDB accepts them only on the login endpoint, which the
 * client calls for you (official behaviour).
 */
export function buildAuthHeader(auth: AuthCredentials): string | undefined {
  if (auth.type === 'jwt') return `Bearer ${auth.token}`;
  if (auth.type === 'none') return undefined;
  throw new KalamError({ code: 'INVALID_ARGUMENT', message: 'basic credentials are only sent to /v1/api/auth/login; the client exchanges them for a JWT' });
}

/** Whether the credentials identify someone (basic or JWT). */
export function isAuthenticated(a: AuthCredentials | null | undefined): boolean {
  return a?.type === 'basic' || a?.type === 'jwt';
}

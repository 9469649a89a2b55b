/*
 * The signed-in user's account (docs/api.md): who is signed in (GET /api/me),
 * API tokens (list, create: the secret shown once, revoke) and the password.
 * Built on http.ts's `request`.
 */
import { ApiError, request } from './http'

export interface Me {
  id: string
  name: string
  /** Signed in with a session (cookie or login) rather than an API token. */
  session: boolean
}

export interface TokenInfo {
  id: string
  kind: string
  name: string
  created: string
  lastUsed: string
  current: boolean
}

async function json(response: Response): Promise<Record<string, unknown> | null> {
  try {
    const body: unknown = await response.json()
    return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : null
  } catch {
    return null
  }
}

const badResponse = (message: string) => new ApiError(200, 'bad_response', message)

export async function getMe(): Promise<Me> {
  const body = await json(await request('/api/me'))
  if (!body || typeof body.name !== 'string') throw badResponse('The server did not say who is signed in.')
  return { id: String(body.id ?? ''), name: body.name, session: body.session === true }
}

function time(value: unknown): string {
  if (typeof value === 'string') return value
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return ''
  // Seconds or milliseconds since the epoch (anything below 1e12 ms is before 2001).
  return new Date(value < 1e12 ? value * 1000 : value).toISOString()
}

export function parseToken(raw: unknown): TokenInfo | null {
  if (typeof raw !== 'object' || raw === null) return null
  const t = raw as Record<string, unknown>
  if (typeof t.id !== 'string' && typeof t.id !== 'number') return null
  return {
    id: String(t.id),
    kind: typeof t.kind === 'string' ? t.kind : '',
    name: typeof t.name === 'string' ? t.name : '',
    created: time(t.created),
    lastUsed: time(t.last_used),
    current: t.current === true,
  }
}

export async function listTokens(): Promise<TokenInfo[]> {
  const body = await json(await request('/api/tokens'))
  if (!Array.isArray(body?.tokens)) throw badResponse('The token list is missing.')
  return body.tokens.map(parseToken).filter((t): t is TokenInfo => t !== null)
}

/** POST /api/tokens: a new API token; its secret is in the answer only this once. */
export async function createToken(name?: string): Promise<{ id: string; token: string }> {
  const body = await json(await request('/api/tokens', { method: 'POST', body: name ? { name } : {} }))
  if (!body || typeof body.token !== 'string') throw badResponse('The server sent no token.')
  return { id: String(body.id ?? ''), token: body.token }
}

export async function revokeToken(id: string): Promise<void> {
  await request(`/api/tokens/${encodeURIComponent(id)}`, { method: 'DELETE' })
}

/** POST /api/me/password; a wrong current password is a 403 (not a sign-out). */
export async function changePassword(current: string, next: string): Promise<void> {
  await request('/api/me/password', { method: 'POST', body: { current, new: next }, quiet401: true })
}

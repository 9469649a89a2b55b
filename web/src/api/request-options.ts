/*
 * A job's request options and webhook as the new-job form edits them, and
 * how they become the fields of POST /api/jobs (docs/api.md, "Request
 * options" and "Completion webhooks"). The header rules mirror the server's
 * (src/core/request_options.cpp) so the form can say what is wrong before
 * sending; the server stays the judge.
 */

export interface RequestOptionsForm {
  userAgent: string
  referer: string
  /** "Name: value", one a line. */
  headers: string
  retries: string
  timeout: string
  perHost: string
  maxBytes: string
  webhookUrl: string
  webhookSecret: string
  webhookEvents: WebhookEvent[]
}

export type WebhookEvent = 'done' | 'failed' | 'cancelled'
export const WEBHOOK_EVENTS: readonly WebhookEvent[] = ['done', 'failed', 'cancelled']

/** The fields added to the POST /api/jobs body; only those set. */
export interface JobRequestFields {
  user_agent?: string
  referer?: string
  headers?: Record<string, string>
  retries?: number
  timeout?: number
  per_host?: number
  max_bytes?: number
  webhook?: { url: string; secret?: string; events: WebhookEvent[] }
}

export function emptyRequestOptions(): RequestOptionsForm {
  return {
    userAgent: '',
    referer: '',
    headers: '',
    retries: '',
    timeout: '',
    perHost: '',
    maxBytes: '',
    webhookUrl: '',
    webhookSecret: '',
    webhookEvents: [...WEBHOOK_EVENTS],
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const TRANSFER_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'cookie2'])
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/

/** Why a header may not be sent; null when it may (the server's rules). */
export function headerProblem(name: string, value: string): string | null {
  if (!name) return 'a header name must not be empty'
  if (!TOKEN.test(name)) return `header "${name}" is not a valid name`
  const lower = name.toLowerCase()
  if (TRANSFER_HEADERS.has(lower) || lower.startsWith('proxy-')) return `header "${name}" is set by the transfer itself`
  if (CONTROL.test(value)) return `header "${name}" must not contain line breaks or control characters`
  return null
}

/** Authorization, Cookie, *-Token, *-Key: shown redacted by the server. */
export function isCredentialHeader(name: string): boolean {
  const lower = name.toLowerCase()
  return lower === 'authorization' || lower === 'cookie' || lower.endsWith('-token') || lower.endsWith('-key')
}

function wholeNumber(text: string, what: string, min: number): number | string | undefined {
  const trimmed = text.trim()
  if (!trimmed) return undefined
  const n = Number(trimmed)
  if (!Number.isInteger(n) || n < min) return `${what} must be a whole number of at least ${min}`
  return n
}

/** The form as body fields, or the first problem found. */
export function requestFields(form: RequestOptionsForm): { fields: JobRequestFields } | { error: string } {
  const fields: JobRequestFields = {}
  for (const [key, text] of [['user_agent', form.userAgent], ['referer', form.referer]] as const) {
    const value = text.trim()
    if (!value) continue
    if (CONTROL.test(value)) return { error: `${key === 'user_agent' ? 'User-Agent' : 'Referer'} must be one line` }
    fields[key] = value
  }
  const headers: Record<string, string> = {}
  for (const raw of form.headers.split('\n')) {
    const line = raw.replace(/\r$/, '')
    if (!line.trim()) continue
    const colon = line.indexOf(':')
    if (colon < 0) return { error: `"${line}" is not written "Name: value"` }
    const name = line.slice(0, colon).trim()
    const value = line.slice(colon + 1).trim()
    const problem = headerProblem(name, value)
    if (problem) return { error: problem }
    headers[name] = value
  }
  if (Object.keys(headers).length) fields.headers = headers
  const numbers = [
    ['retries', form.retries, 'Retries', 0],
    ['per_host', form.perHost, 'Transfers per host', 1],
    ['max_bytes', form.maxBytes, 'Largest image (bytes)', 1],
  ] as const
  for (const [key, text, what, min] of numbers) {
    const n = wholeNumber(text, what, min)
    if (typeof n === 'string') return { error: n }
    if (n !== undefined) fields[key] = n
  }
  if (form.timeout.trim()) {
    const seconds = Number(form.timeout.trim())
    if (!Number.isFinite(seconds) || seconds < 0.1) return { error: 'Timeout must be at least 0.1 seconds' }
    fields.timeout = seconds
  }
  const url = form.webhookUrl.trim()
  if (url) {
    if (!/^https?:\/\//i.test(url)) return { error: 'The webhook URL must start with http:// or https://' }
    if (!form.webhookEvents.length) return { error: 'Choose at least one webhook event' }
    fields.webhook = { url, events: [...form.webhookEvents] }
    if (form.webhookSecret) fields.webhook.secret = form.webhookSecret
  }
  return { fields }
}

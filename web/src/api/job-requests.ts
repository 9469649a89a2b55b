/*
 * Job requests beyond the basic client (http.ts): retry with reasons and how
 * many were requeued, rename, when a finished job finished, and the zip with
 * file names from the URLs (docs/api.md). Built on http.ts's `request`, so
 * auth and errors work as everywhere else.
 */
import { archiveUrl, request } from './http'
import { parseJob, type Job } from './protocol'

const jobPath = (id: string) => `/api/jobs/${encodeURIComponent(id)}`

async function json(response: Response): Promise<Record<string, unknown> | null> {
  if (response.status === 204) return null
  try {
    const body: unknown = await response.json()
    return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/**
 * POST /api/jobs/{id}/retry: requeues failed items, those with a transient
 * reason when `reasons` is omitted, else those with one of `reasons`.
 * `requeued` is the server's count when it sends one, else null.
 */
export async function retryJob(id: string, reasons?: string[]): Promise<{ job: Job | null; requeued: number | null }> {
  const body = await json(await request(`${jobPath(id)}/retry`, { method: 'POST', ...(reasons ? { body: { reasons } } : {}) }))
  const requeued = typeof body?.requeued === 'number' && Number.isFinite(body.requeued) ? body.requeued : null
  return { job: parseJob(body), requeued }
}

/** PATCH /api/jobs/{id} {"name"}: renames a job; the answer is the job. */
export async function renameJob(id: string, name: string): Promise<Job> {
  const job = parseJob(await json(await request(jobPath(id), { method: 'PATCH', body: { name } })))
  if (!job) throw new Error('The server did not answer with the job.')
  return job
}

/** When a finished job finished (the job's `finished` field), or null. */
export async function getJobFinished(id: string): Promise<string | null> {
  const body = await json(await request(jobPath(id)))
  return typeof body?.finished === 'string' ? body.finished : null
}

/** The zip; `names: 'url'` names files after their URLs (deduplicated, sanitised) instead of their sha256. */
export function archiveUrlNamed(id: string, names: 'sha256' | 'url'): string {
  return `${archiveUrl(id)}${names === 'url' ? '?names=url' : ''}`
}

/*
 * The app's HTTP client: one litchi-client LitchiApi on the page's own origin
 * (the session cookie; a bearer token when the session store holds one), and
 * its calls as plain functions, which is how views and stores use them.
 * The requests themselves, ApiError and the 401 hook live in the package
 * (clients/js/src/api.ts).
 */
import { LitchiApi, type ItemQuery, type Job, type NewJob, type TokenSource } from 'litchi-client'

export { ApiError } from 'litchi-client'
export type { AuthVerdict, ItemPage, JobAction, NewJob } from 'litchi-client'

/** The one API client of the app; the live store polls and checks auth through it. */
export const api = new LitchiApi()

interface AuthHooks {
  /** The bearer token to send, or null to rely on the cookie. */
  token: TokenSource
  /** Called once per 401 response. */
  onUnauthorized: () => void
}

export function configureAuth(hooks: AuthHooks): void {
  api.configureAuth(hooks)
}

export const bearerToken = () => api.token()
export const request = api.request.bind(api)
export const login = api.login.bind(api)
export const loginWithToken = api.loginWithToken.bind(api)
export const logout = api.logout.bind(api)
export const checkAuth = api.checkAuth.bind(api)
export const listJobs = api.listJobs.bind(api)
export const getJob = api.getJob.bind(api)
export const getProgress = api.getProgress.bind(api)
export const jobAction = api.jobAction.bind(api)
export const deleteJob = api.deleteJob.bind(api)
export const fetchObjectUrl = api.fetchObjectUrl.bind(api)
export const imageUrl = api.imageUrl.bind(api)
export const manifestUrl = api.manifestUrl.bind(api)
export const archiveUrl = api.archiveUrl.bind(api)

/** POST /api/jobs with the URLs, a name, and any further field of NewJob. */
export function createJob(urls: string[], name?: string, extra: Omit<NewJob, 'urls' | 'name'> = {}): Promise<Job> {
  return api.createJob({ ...extra, urls, ...(name ? { name } : {}) })
}

export function listItems(id: string, query: ItemQuery, signal?: AbortSignal) {
  return api.listItems(id, query, signal)
}

/*
 * useSessionStore: who is signed in and how the app authenticates.
 *
 * Normal sign-in posts the password to /api/login; the server sets an HttpOnly
 * SameSite=Strict cookie that every request, the WebSocket, SSE, <img> and
 * download links then carry. The token in the answer is not kept: script
 * never needs it, so script cannot leak it. A non-secret marker (the user
 * name) in localStorage tells this and other tabs that a session cookie
 * probably exists; the server's 401 has the last word.
 *
 * The one-time link `/login#token=T` (the fragment never reaches a server log)
 * is exchanged by POST /api/login {"token"} for a new session cookie; the
 * link is dead from then on (it never was a bearer token). A token held in
 * this tab's sessionStorage (bearer mode: HTTP sends it as a header, the
 * socket as the `bearer.` subprotocol) is still honoured if present.
 */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import * as http from '@/api/http'

const USER_MARKER_KEY = 'litchi.user'
const TOKEN_KEY = 'litchi.token'

function readStorage(storage: Storage | undefined, key: string): string | null {
  try {
    return storage?.getItem(key) ?? null
  } catch {
    return null
  }
}

function writeStorage(storage: Storage | undefined, key: string, value: string | null): void {
  try {
    if (value === null) storage?.removeItem(key)
    else storage?.setItem(key, value)
  } catch {
    // Storage disabled: the session lasts as long as the page.
  }
}

const local = () => (typeof localStorage === 'undefined' ? undefined : localStorage)
const session = () => (typeof sessionStorage === 'undefined' ? undefined : sessionStorage)

export type LinkLoginResult = 'cookie' | 'invalid'

export const useSessionStore = defineStore('session', () => {
  /** The signed-in user's name ('' when signed in by a link and the name is unknown). */
  const username = ref<string | null>(readStorage(local(), USER_MARKER_KEY))
  const token = ref<string | null>(readStorage(session(), TOKEN_KEY))
  /** Set when the server refused our credentials, for a message on the login page. */
  const expired = ref(false)

  const signedIn = computed(() => token.value !== null || username.value !== null)
  const mode = computed<'cookie' | 'bearer' | null>(() =>
    token.value !== null ? 'bearer' : username.value !== null ? 'cookie' : null,
  )

  function markSignedIn(name: string): void {
    username.value = name
    expired.value = false
    writeStorage(local(), USER_MARKER_KEY, name)
  }

  function clear(): void {
    username.value = null
    token.value = null
    writeStorage(local(), USER_MARKER_KEY, null)
    writeStorage(session(), TOKEN_KEY, null)
  }

  async function login(name: string, password: string): Promise<void> {
    await http.login(name, password)
    token.value = null
    writeStorage(session(), TOKEN_KEY, null)
    markSignedIn(name)
  }

  async function loginWithLink(linkToken: string): Promise<LinkLoginResult> {
    if (!(await http.loginWithToken(linkToken))) return 'invalid'
    token.value = null
    writeStorage(session(), TOKEN_KEY, null)
    markSignedIn('')
    return 'cookie'
  }

  /** A session cookie set in another tab (or before the marker) also counts. */
  async function adoptExistingSession(): Promise<boolean> {
    if (signedIn.value) return true
    if ((await http.checkAuth()) !== 'ok') return false
    markSignedIn('')
    return true
  }

  async function logout(): Promise<void> {
    try {
      await http.logout()
    } catch {
      // Signed out locally either way; the cookie expires on its own.
    }
    clear()
  }

  /** The server answered 401: the session is over. */
  function expire(): void {
    if (!signedIn.value) return
    clear()
    expired.value = true
  }

  // Another tab signed out (marker removed): follow it, unless we hold our own token.
  if (typeof window !== 'undefined') {
    window.addEventListener('storage', (event) => {
      if (event.key !== USER_MARKER_KEY) return
      if (event.newValue === null && token.value === null) username.value = null
      else if (event.newValue !== null) username.value = event.newValue
    })
  }

  http.configureAuth({ token: () => token.value, onUnauthorized: expire })

  return { username, token, expired, signedIn, mode, login, loginWithLink, adoptExistingSession, logout, expire }
})

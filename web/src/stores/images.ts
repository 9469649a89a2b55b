/*
 * useImagesStore: where an <img> or a download link points. With the session
 * cookie (the normal case) that is the API URL itself. When the app holds a
 * bearer token instead (login link the server would not swap for a cookie),
 * <img> cannot send the header, so the bytes are fetched with it and shown
 * from object URLs, a bounded number at a time (oldest revoked first).
 */
import { defineStore } from 'pinia'
import { shallowRef, triggerRef } from 'vue'
import { fetchObjectUrl } from '@/api/http'
import { useSessionStore } from './session'

const MAX_OBJECT_URLS = 400

export const useImagesStore = defineStore('images', () => {
  const session = useSessionStore()
  const objectUrls = shallowRef(new Map<string, string>())
  const inFlight = new Set<string>()

  function load(path: string): void {
    if (inFlight.has(path)) return
    inFlight.add(path)
    fetchObjectUrl(path)
      .then((url) => {
        const map = objectUrls.value
        map.set(path, url)
        while (map.size > MAX_OBJECT_URLS) {
          const [oldest, oldUrl] = map.entries().next().value as [string, string]
          map.delete(oldest)
          URL.revokeObjectURL(oldUrl)
        }
        triggerRef(objectUrls)
      })
      .catch(() => {
        // A missing image shows as an empty tile; nothing to retry.
      })
      .finally(() => inFlight.delete(path))
  }

  /** The src for a protected API path; '' while a bearer-mode fetch is pending. */
  function src(path: string): string {
    if (session.mode !== 'bearer') return path
    const url = objectUrls.value.get(path)
    if (url) return url
    load(path)
    return ''
  }

  function clear(): void {
    for (const url of objectUrls.value.values()) URL.revokeObjectURL(url)
    objectUrls.value = new Map()
  }

  return { src, clear }
})

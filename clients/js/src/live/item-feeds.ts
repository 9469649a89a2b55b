/*
 * Who is following which job's items. Several views may follow one job, but
 * the socket needs one `subscribe` per job, not per view: so LiveJobs asks
 * the server when a job gains its first feed and lets go when it loses its
 * last, and after a reconnect re-subscribes every job that still has one.
 * This keeps the counting; LiveJobs does the sending.
 */
import type { Item } from '../protocol.js'

/** Follows one job's items: each changed item, and "re-read them all" (`items_reset`). */
export interface ItemFeed {
  item: (item: Item) => void
  reset: () => void
}

export class ItemFeeds {
  private readonly feeds = new Map<string, Set<ItemFeed>>()

  /** Adds `feed` to `jobId`; true when it is the job's first (time to subscribe). */
  add(jobId: string, feed: ItemFeed): boolean {
    const current = this.feeds.get(jobId)
    if (current) {
      current.add(feed)
      return false
    }
    this.feeds.set(jobId, new Set([feed]))
    return true
  }

  /** Removes `feed`; true when that left the job with none (time to unsubscribe). */
  remove(jobId: string, feed: ItemFeed): boolean {
    const current = this.feeds.get(jobId)
    if (!current) return false
    current.delete(feed)
    if (current.size > 0) return false
    this.feeds.delete(jobId)
    return true
  }

  /** The jobs someone follows. */
  jobIds(): IterableIterator<string> {
    return this.feeds.keys()
  }

  item(jobId: string, item: Item): void {
    for (const feed of this.feeds.get(jobId) ?? []) feed.item(item)
  }

  reset(jobId: string): void {
    for (const feed of this.feeds.get(jobId) ?? []) feed.reset()
  }
}

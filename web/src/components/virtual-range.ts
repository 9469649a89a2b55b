/*
 * Which rows of a fixed-row-height list are worth rendering: those in the
 * viewport plus `overscan` rows either side, so a 10,000-row list keeps a few
 * dozen DOM nodes however far it is scrolled.
 */
export interface VisibleRange {
  /** First rendered row (inclusive). */
  start: number
  /** One past the last rendered row. */
  end: number
  /** Pixels above the first rendered row. */
  offset: number
  /** Height of the whole list in pixels. */
  totalHeight: number
}

export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  rowCount: number,
  overscan = 4,
): VisibleRange {
  const height = Math.max(1, rowHeight)
  const totalHeight = rowCount * height
  if (rowCount === 0) return { start: 0, end: 0, offset: 0, totalHeight: 0 }
  const top = Math.min(Math.max(0, scrollTop), Math.max(0, totalHeight - 1))
  const first = Math.floor(top / height)
  const visible = Math.ceil(Math.max(0, viewportHeight) / height) + 1
  const start = Math.max(0, first - overscan)
  const end = Math.min(rowCount, first + visible + overscan)
  return { start, end, offset: start * height, totalHeight }
}

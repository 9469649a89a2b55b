/* The virtual list renders only the rows in view, however long the list. */
import { describe, expect, it } from 'vitest'
import { createApp, h, nextTick } from 'vue'
import VirtualList from '@/components/VirtualList.vue'
import { visibleRange } from '@/components/virtual-range'

describe('visibleRange', () => {
  it('covers the viewport plus overscan and clamps at both ends', () => {
    expect(visibleRange(0, 400, 40, 10_000, 4)).toEqual({ start: 0, end: 15, offset: 0, totalHeight: 400_000 })
    expect(visibleRange(4_000, 400, 40, 10_000, 4)).toEqual({ start: 96, end: 115, offset: 3_840, totalHeight: 400_000 })
    const last = visibleRange(10_000_000, 400, 40, 10_000, 4)
    expect(last.end).toBe(10_000)
    expect(last.start).toBeGreaterThan(9_980)
    expect(visibleRange(-50, 400, 40, 3, 4)).toEqual({ start: 0, end: 3, offset: 0, totalHeight: 120 })
    expect(visibleRange(0, 400, 40, 0)).toEqual({ start: 0, end: 0, offset: 0, totalHeight: 0 })
  })
})

describe('VirtualList', () => {
  it('keeps a few dozen rows in the DOM for 10,000 items and follows scrolling', async () => {
    const items = Array.from({ length: 10_000 }, (_, i) => ({ id: i, label: `row ${i}` }))
    const root = document.createElement('div')
    document.body.appendChild(root)
    const app = createApp({
      render: () =>
        h(
          VirtualList<{ id: number; label: string }>,
          { items, rowHeight: 30, height: 300, itemKey: (item: { id: number }) => item.id },
          { default: ({ item }: { item: { label: string } }) => h('span', { class: 'cell' }, item.label) },
        ),
    })
    app.mount(root)
    await nextTick()
    const rows = () => root.querySelectorAll('[role="listitem"]')
    expect(rows().length).toBeLessThan(30)
    expect(rows()[0].textContent).toBe('row 0')
    const spacer = root.querySelector('.virtual-list__spacer') as HTMLElement
    expect(spacer.style.height).toBe('300000px')

    const viewport = root.querySelector('.virtual-list') as HTMLElement
    viewport.scrollTop = 150_000
    viewport.dispatchEvent(new Event('scroll'))
    await new Promise((resolve) => setTimeout(resolve, 50))
    await nextTick()
    const labels = [...rows()].map((row) => row.textContent)
    expect(labels).toContain('row 5000')
    expect(labels).not.toContain('row 0')
    expect(rows().length).toBeLessThan(30)
    app.unmount()
    root.remove()
  })
})

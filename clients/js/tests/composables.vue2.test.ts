/*
 * litchi-client/vue on Vue 2.7 (this file runs with `vue` aliased to Vue 2.7,
 * see vitest.config.ts): the composables work in a Vue 2 component through
 * the default client, follow the live state, and unsubscribe on $destroy.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import * as vue from 'vue'
import { defineComponent, h, nextTick, ref, version } from 'vue'
import { LitchiClient } from '../src/client.js'
import { FakeEventSource, FakeWebSocket, makeJob, MemoryStorage, resetFakes } from '../src/testing.js'
import { setLitchiClient, useJobProgress, useJobs } from '../src/vue.js'

let client: LitchiClient

function serverSays(message: unknown): void {
  FakeWebSocket.latest().serverSend(message)
  client.live.flush()
}

beforeEach(() => {
  resetFakes()
  vi.stubGlobal('WebSocket', FakeWebSocket)
  vi.stubGlobal('EventSource', FakeEventSource)
  client = new LitchiClient({ storage: new MemoryStorage() })
  setLitchiClient(client)
})

afterEach(() => {
  client.close()
  setLitchiClient(null)
  vi.unstubAllGlobals()
})

describe('Vue 2.7', () => {
  it('is what this file runs on', () => {
    expect(version).toMatch(/^2\.7\./)
  })

  it('renders a job and the list live in a Vue 2 component, and lets go on $destroy', async () => {
    const id = ref('1')
    let seen: { job: ReturnType<typeof useJobProgress>['job']; jobs: ReturnType<typeof useJobs>['jobs'] } | null = null
    const Progress = defineComponent({
      setup() {
        const { job, percent, connection } = useJobProgress(id)
        const { jobs } = useJobs()
        seen = { job, jobs }
        return () => h('p', `${job.value?.name ?? '-'} ${percent.value}% of ${jobs.value.length} ${connection.value}`)
      },
    })
    // Vue 2's constructor (its default export; Vue 3's types know none): mount on an element, as a Vue 2 app does.
    const VueConstructor = (vue as unknown as { default: new (options: object) => { $mount(el: Element): { $el: Element }; $destroy(): void } })
      .default
    const host = document.createElement('div')
    document.body.appendChild(host)
    const vm = new VueConstructor({ render: (make: (component: unknown) => unknown) => make(Progress) })
    const mounted = vm.$mount(host)
    FakeWebSocket.latest().serverOpen()
    serverSays({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 40, 100, { name: 'cats' }), makeJob('2', 0, 10, { name: 'dogs' })] })
    await nextTick()
    expect(mounted.$el.textContent).toBe('cats 40% of 2 live')
    serverSays({ type: 'progress', seq: 2, job: makeJob('1', 70, 100, { name: 'cats' }) })
    await nextTick()
    expect(mounted.$el.textContent).toBe('cats 70% of 2 live')
    id.value = '2'
    await nextTick()
    await nextTick()
    expect(mounted.$el.textContent).toBe('dogs 0% of 2 live')

    vm.$destroy()
    serverSays({ type: 'progress', seq: 3, job: makeJob('2', 5, 10, { name: 'dogs' }) })
    serverSays({ type: 'job', seq: 4, event: 'created', job: makeJob('3', 0, 10, { name: 'owls' }) })
    // The component's subscriptions ended: its refs no longer move.
    expect(seen!.job.value?.counts.done).toBe(0)
    expect(seen!.jobs.value).toHaveLength(2)
    expect(client.live.job('2')?.counts.done).toBe(5)
  })
})

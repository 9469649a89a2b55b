// The comparison server for bench/fanout: a plain `ws` broadcast server (the
// package's own broadcast recipe: JSON.stringify once, client.send to every
// open client). It plays Litchi's part with the same messages:
//   - a `progress` message of Litchi's shape and size, with an increasing seq,
//     every INTERVAL_MS (0: as fast as the event loop turns, for throughput);
//   - every PROBE_MS a {"type":"job","event":"created"} probe whose job carries
//     `bench_t0`, the wall-clock ms of its creation (the client's latency base).
// A client whose send buffer holds over 64 KiB is skipped for that message
// (the bounded-memory rule Litchi follows too); without it a saturating run
// would only measure how fast Node can grow its heap.
//   node node_broadcast.js PORT INTERVAL_MS [PROBE_MS]
'use strict'
const path = require('path')
const { performance } = require('perf_hooks')
const WebSocket = require(path.join(__dirname, '../../tests/clients/node_modules/ws'))

const [, , port, intervalText, probeText = '0'] = process.argv
const server = new WebSocket.Server({ host: '127.0.0.1', port: Number(port), perMessageDeflate: false })
const SEND_BUFFER_LIMIT = 64 * 1024
let seq = 1_700_000_000_000_000
let done = 0
let probes = 0
const job = {
  id: 1, name: 'bench', state: 'running', created: '2026-05-01T12:00:00.000Z',
  counts: { total: 100000, queued: 99968, active: 32, done: 0, failed: 0, cancelled: 0 },
  bytes: 0, rate: 0, eta: null
}

function broadcast (text) {
  for (const client of server.clients) {
    if (client.readyState === WebSocket.OPEN && client.bufferedAmount < SEND_BUFFER_LIMIT) client.send(text)
  }
}

function tick () {
  job.counts.done = ++done
  job.counts.queued = job.counts.total - done - job.counts.active
  job.bytes = done * 1234
  job.rate = done % 1000
  broadcast(JSON.stringify({ type: 'progress', seq: ++seq, job }))
}

function probe () {
  const created = {
    id: 1000 + probes, name: `probe-${probes++}`, state: 'queued', created: new Date().toISOString(),
    counts: { total: 1, queued: 1, active: 0, done: 0, failed: 0, cancelled: 0 }, bytes: 0, rate: 0, eta: null,
    bench_t0: performance.timeOrigin + performance.now()
  }
  broadcast(JSON.stringify({ type: 'job', seq: ++seq, event: 'created', job: created }))
}

const interval = Number(intervalText)
if (interval > 0) {
  setInterval(tick, interval)
} else {
  setImmediate(function loop () {
    tick()
    setImmediate(loop)
  })
}
if (Number(probeText) > 0) setInterval(probe, Number(probeText))
server.on('listening', () => process.stdout.write(`PORT ${server.address().port}\n`))

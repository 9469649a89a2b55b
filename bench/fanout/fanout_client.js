// Fan-out benchmark client: opens COUNT WebSockets from this one process (the
// `ws` package from tests/clients) to one server and measures what arrives.
// Driven by bench/fanout/bench.py; one JSON argument, one JSON line out.
//
//   node fanout_client.js '{"url":..., "protocols":"a,b", "count":1000,
//                           "seconds":15, "mode":"measure"|"idle", "probe":{...}}'
//
// mode "measure": after every socket is open, counts every message received
// for `seconds` and reports
//   - messages/s delivered (all sockets together);
//   - latency from a probe event's creation (below) to its receipt, p50/p99,
//     over every socket;
//   - spread of every job-level message (receipt on a socket minus its first
//     receipt on any socket): the fan-out cost alone, p50/p99.
// Probes: every `every_ms` this process POSTs a one-URL job named probe-K to
// `api` (Litchi) and notes the time just before the request; the server's
// {"type":"job","event":"created"} for it is then an event whose creation
// lies after that instant, so receipt minus it bounds the latency from above
// (it includes the HTTP request and the SQLite commit). The Node comparison
// server creates its probe events itself and stamps them (`bench_t0`).
// Both processes read the same system clock (performance.timeOrigin + now()).
//
// mode "idle": opens the sockets, prints {"opened":N} and keeps them open,
// reading nothing, until stdin closes.
'use strict'
const http = require('http')
const path = require('path')
const { performance } = require('perf_hooks')
const WebSocket = require(path.join(__dirname, '../../tests/clients/node_modules/ws'))

const options = JSON.parse(process.argv[2])
const wallMs = () => performance.timeOrigin + performance.now()

const firstSeen = new Map() // seq -> first receipt (ms)
const spreads = []
const latencies = []
const probeStarts = new Map() // probe name -> ms just before its POST
let delivered = 0
let measuring = false
let opened = 0
let failed = 0
const closes = new Map()

function onMessage (data) {
  if (!measuring) return
  const t = wallMs()
  delivered++
  const text = data.toString()
  // Cheap field reads first: a full parse only for the rare probe messages.
  const seq = /"seq":(\d+)/.exec(text)
  if (seq) {
    const first = firstSeen.get(seq[1])
    if (first === undefined) {
      firstSeen.set(seq[1], t)
      spreads.push(0)
    } else {
      spreads.push(t - first)
    }
  }
  if (text.includes('"probe-')) {
    const message = JSON.parse(text)
    if (message.type === 'job' && message.event === 'created') {
      const t0 = probeStarts.get(message.job.name) ?? message.job.bench_t0
      if (t0 !== undefined) latencies.push(t - t0)
    }
  }
}

function open () {
  return new Promise((resolve) => {
    const protocols = options.protocols ? options.protocols.split(',') : undefined
    const ws = new WebSocket(options.url, protocols, { perMessageDeflate: false })
    ws.on('open', () => { opened++; resolve(ws) })
    ws.on('error', () => { failed++; resolve(null) })
    ws.on('close', (code) => closes.set(code, (closes.get(code) || 0) + 1))
    if (options.mode !== 'idle') ws.on('message', onMessage)
  })
}

function sendProbe (k) {
  const probe = options.probe
  const name = `probe-${k}`
  const body = JSON.stringify({ urls: [probe.image], name })
  const target = new URL('/api/jobs', probe.api)
  probeStarts.set(name, wallMs())
  const request = http.request(target, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body),
      Authorization: `Bearer ${probe.token}` }
  }, (response) => response.resume())
  request.on('error', (error) => process.stderr.write(`probe ${k}: ${error.message}\n`))
  request.end(body)
}

function percentile (values, p) {
  if (values.length === 0) return null
  const sorted = Float64Array.from(values).sort()
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] * 1000) / 1000
}

async function main () {
  const sockets = []
  // Open in waves so the accept queue is not what is being measured.
  for (let i = 0; i < options.count; i += 250) {
    const wave = []
    for (let j = i; j < Math.min(options.count, i + 250); j++) wave.push(open())
    sockets.push(...await Promise.all(wave))
  }
  process.stderr.write(`opened ${opened}, failed ${failed}\n`)
  if (options.mode === 'idle') {
    process.stdout.write(JSON.stringify({ opened, failed }) + '\n')
    process.stdin.resume()
    process.stdin.on('end', () => process.exit(0))
    return
  }
  // Let the hellos pass, then measure.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  measuring = true
  const startedAt = wallMs()
  let probeTimer = null
  if (options.probe) {
    let k = 0
    probeTimer = setInterval(() => sendProbe(k++), options.probe.every_ms)
  }
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000))
  measuring = false
  if (probeTimer) clearInterval(probeTimer)
  const elapsed = (wallMs() - startedAt) / 1000
  const result = {
    sockets: opened,
    failed,
    seconds: Math.round(elapsed * 100) / 100,
    delivered,
    messages_per_s: Math.round(delivered / elapsed),
    events: firstSeen.size,
    probes: latencies.length,
    latency_p50_ms: percentile(latencies, 0.5),
    latency_p99_ms: percentile(latencies, 0.99),
    spread_p50_ms: percentile(spreads, 0.5),
    spread_p99_ms: percentile(spreads, 0.99),
    closes: Object.fromEntries(closes),
    client_rss_kib: Math.round(process.memoryUsage().rss / 1024)
  }
  process.stdout.write(JSON.stringify(result) + '\n')
  for (const ws of sockets) if (ws) ws.terminate()
  process.exit(0)
}
main()

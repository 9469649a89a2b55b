// Fan-out benchmark client: one of several processes (bench/fanout/bench.py
// starts --clients of them) that together hold the watchers' WebSockets, so
// that no single client process is what limits the measured delivery rate.
// Each process holds COUNT sockets (the `ws` package from tests/clients) and
// measures what arrives on them; the driver reads its CPU from /proc.
//
//   node fanout_client.js '{"url":..., "protocols":"a,b", "count":250, "mode":"sweep"|"idle"}'
//
// It opens its sockets, prints {"opened":N,"failed":F} and then answers one
// JSON command per stdin line with one JSON line on stdout, until stdin closes:
//   {"cmd":"count"}  -> {"received":N}: messages received so far (the driver
//                       polls it to see the backlog of a step drain);
//   {"cmd":"report","step":K,"from_us":A,"to_us":B}
//                    -> for step K: the latency histogram of its events, how
//                       many of its events arrived, and how many messages of
//                       any kind arrived between A and B (the delivered rate).
//
// mode "sweep": bench/fanout/publisher.js names every event it publishes
// "fanout:K:T", K its step and T the CLOCK_MONOTONIC microseconds just before
// it sent the request that creates it; the server sends that name in the
// event's `job` object ({"type":"job",...,"event":"created"}). Latency is receipt (process.hrtime, CLOCK_MONOTONIC,
// the same clock in every process on this machine) minus T. It is kept as a
// histogram with 64 bins per doubling (1.1 % wide), so the driver can merge
// the processes' histograms exactly. Messages are not parsed: a byte search
// for the name is all the per-message work, to keep the client cheap.
//
// mode "idle": opens the sockets and reads nothing until stdin closes.
'use strict'
const path = require('path')
const readline = require('readline')
const WebSocket = require(path.join(__dirname, '../../tests/clients/node_modules/ws'))

const options = JSON.parse(process.argv[2])
const JOB_EVENT = Buffer.from('{"type":"job",')
const MARKER = Buffer.from('"name":"fanout:')
const BIN_US = 10_000 // receipt counts in 10 ms bins, for the driver's windows
const BINS_PER_DOUBLING = 64

function nowUs () {
  const [s, ns] = process.hrtime()
  return s * 1e6 + ns / 1e3
}

const startUs = nowUs()
const receiptBins = new Uint32Array(20 * 60 * 1e6 / BIN_US) // 20 minutes
const steps = new Map() // step -> { received, hist: Map(bin -> count) }
let received = 0
let opened = 0
let failed = 0
const closes = new Map()

function digitsAt (data, at, stop) {
  let value = 0
  for (; at < data.length && data[at] !== stop; at++) value = value * 10 + (data[at] - 48)
  return [value, at + 1]
}

function onMessage (data) {
  const t = nowUs()
  received++
  const bin = Math.floor((t - startUs) / BIN_US)
  if (bin < receiptBins.length) receiptBins[bin]++
  // Only the `job created` message: a later `progress` of the same job has its name too.
  if (data.length < JOB_EVENT.length || data.compare(JOB_EVENT, 0, JOB_EVENT.length, 0, JOB_EVENT.length) !== 0) return
  const at = data.indexOf(MARKER)
  if (at < 0) return
  const [step, next] = digitsAt(data, at + MARKER.length, 58) // ':'
  const [sentUs] = digitsAt(data, next, 34) // '"'
  let entry = steps.get(step)
  if (!entry) steps.set(step, (entry = { received: 0, hist: new Map() }))
  entry.received++
  const h = Math.floor(Math.log2(Math.max(t - sentUs, 1)) * BINS_PER_DOUBLING)
  entry.hist.set(h, (entry.hist.get(h) || 0) + 1)
}

function open () {
  return new Promise((resolve) => {
    const protocols = options.protocols ? options.protocols.split(',') : undefined
    const ws = new WebSocket(options.url, protocols, { perMessageDeflate: false })
    let isOpen = false
    ws.on('open', () => { opened++; isOpen = true; resolve(ws) })
    ws.on('error', () => { if (!isOpen) { failed++; resolve(null) } })
    ws.on('close', (code) => { if (isOpen) closes.set(code, (closes.get(code) || 0) + 1) })
    if (options.mode === 'sweep') ws.on('message', onMessage)
  })
}

function answer (command) {
  if (command.cmd === 'count') return { received }
  if (command.cmd === 'report') {
    const entry = steps.get(command.step) || { received: 0, hist: new Map() }
    let inWindow = 0
    const first = Math.max(0, Math.ceil((command.from_us - startUs) / BIN_US))
    const last = Math.min(receiptBins.length, Math.floor((command.to_us - startUs) / BIN_US))
    for (let i = first; i < last; i++) inWindow += receiptBins[i]
    return {
      step: command.step,
      events_received: entry.received,
      hist: [...entry.hist.entries()],
      window_messages: inWindow,
      window_s: Math.max(0, last - first) * BIN_US / 1e6,
      open: opened - [...closes.values()].reduce((a, b) => a + b, 0),
      closes: Object.fromEntries(closes)
    }
  }
  return { error: `unknown command ${JSON.stringify(command)}` }
}

async function main () {
  const sockets = []
  // Open in waves so the accept queue is not what is being measured.
  for (let i = 0; i < options.count; i += 250) {
    const wave = []
    for (let j = i; j < Math.min(options.count, i + 250); j++) wave.push(open())
    sockets.push(...await Promise.all(wave))
  }
  process.stdout.write(JSON.stringify({ opened, failed }) + '\n')
  const lines = readline.createInterface({ input: process.stdin })
  lines.on('line', (line) => process.stdout.write(JSON.stringify(answer(JSON.parse(line))) + '\n'))
  lines.on('close', () => {
    for (const ws of sockets) if (ws) ws.terminate()
    process.exit(0)
  })
}
main()

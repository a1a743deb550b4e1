"use strict";
/*
 * The real Node.js Socket.IO worker imdiag drives: one socket.io-client socket, with nothing
 * emulated on top (the library's defaults: reconnection, buffering, batching, transports).
 *
 * Usage: node client.js '{"url":"http://127.0.0.1:3000","namespace":"/worker","path":"/socket.io/","transports":null}'
 *   transports: null for the library's default (polling, then the websocket upgrade), or a list.
 *
 * Commands on stdin, one JSON object per line:
 *   {"op":"emit","seq":N,"event":"message"}, then the message's JSON on the next line:
 *                                                             emit JSON.parse(that line) on the event
 *   {"op":"replace"}                                           close this socket, open a new client
 * Reports on stdout, one JSON object per line, each with "t" (ms since start, this process's clock):
 *   {"ev":"ready","versions":{...}}
 *   {"ev":"emit","seq","threw","connected_before","id_before","connected","id","buffered"}
 *   {"ev":"connect","id","recovered","transport","extensions"}
 *   {"ev":"upgrade","transport","extensions"}
 *   {"ev":"disconnect","reason","description","code","close_reason","status","active"}
 *   {"ev":"connect_error","message"}  {"ev":"reconnect_failed"}
 *   {"ev":"flush","seqs","packets","bytes","frames","transport","id"}   the engine handed a batch to its transport
 *   {"ev":"written","seqs"}      that batch was written (websocket: handed to ws; polling: the POST was answered 200)
 *   {"ev":"dropped","in_flight","unsent"}   the session closed with these still in the engine's buffer
 *   {"ev":"received","event","id"}   an event from the master (the --csr ticks): the client now holds an offset
 * What the library does is observed through its own events (onAnyOutgoing, the engine's
 * packetCreate / flush / drain / close) and the one counter they need (the engine's
 * _prevBufferLen: how many buffered packets the last flush handed over).
 * It exits when its stdin closes, on SIGTERM/SIGINT, or on EPIPE: it never outlives imdiag.
 */

const path = require("path");
const { performance } = require("perf_hooks");

const { load, packageVersion, report: writeLine } = require("./lines.js");

const { io } = load("socket.io-client");
// engine.io-parser as engine.io-client itself loads it (the copy its own encoder uses).
const clientDir = path.dirname(load.resolve("engine.io-client"));
const parser = load(load.resolve("engine.io-parser", { paths: [clientDir] }));

const started = performance.now();

function report(obj) {
  obj.t = Math.round((performance.now() - started) * 1000) / 1000;
  writeLine(obj);
}

function text(value) {
  if (value === undefined || value === null) return "";
  if (value instanceof Error) return value.message;
  if (typeof value === "object") return value.message || value.type || "";
  return String(value);
}

/** What the library says about a disconnect: socket.io-client's reason and details, flattened. */
function disconnectDetails(details) {
  const out = { description: "", code: null, close_reason: "", status: null };
  if (!details) return out;
  // websocket: {description: "websocket connection closed", context: CloseEvent {code, reason}}
  // polling:   TransportError {message: "xhr post error", description: <HTTP status>, context: xhr}
  const description = details.description;
  out.description = details instanceof Error ? details.message : text(description);
  const context = details.context;
  if (context && typeof context.code === "number") {
    out.code = context.code;
    out.close_reason = String(context.reason || "");
  }
  // xhr status 0: no HTTP answer at all (the server destroyed the request's socket).
  if (typeof description === "number" && description) out.status = description;
  else if (typeof description === "number") out.description += ": no HTTP response (status 0)";
  else if (context && typeof context.status === "number" && context.status) out.status = context.status;
  if (details instanceof Error && details.description !== undefined && typeof details.description !== "number") {
    out.description += ": " + text(details.description);
  }
  return out;
}

function main() {
  const opts = JSON.parse(process.argv[2] || "{}");
  const url = opts.url + (opts.namespace && opts.namespace !== "/" ? opts.namespace : "");
  const ioOpts = { path: opts.path || "/socket.io/", forceNew: true };
  if (opts.transports) ioOpts.transports = opts.transports;

  let socket = null;
  const seqOf = new WeakMap(); // emitted object -> seq, then engine packet -> seq
  let current = null; // the seq whose packet the engine is creating right now
  let inFlight = null; // the batch the engine's transport is writing

  function seqs(packets) {
    return packets.map((p) => seqOf.get(p)).filter((s) => s !== undefined);
  }

  function batchBytes(engine, packets) {
    // The client's own encoder: one frame per packet (websocket), one \x1e-joined body (polling).
    const frames = [];
    for (const p of packets) parser.encodePacket(p, false, (data) => frames.push(Buffer.byteLength(data)));
    if (engine.transport.name !== "polling") return { bytes: frames.reduce((a, b) => a + b, 0), frames };
    let body = 0;
    parser.encodePayload(packets, (payload) => (body = Buffer.byteLength(payload)));
    return { bytes: body, frames };
  }

  function extensions(engine) {
    const ws = engine.transport && engine.transport.ws;
    return ws && typeof ws.extensions === "string" ? ws.extensions : "";
  }

  function watchEngine(engine) {
    engine.on("packetCreate", (packet) => {
      if (current !== null) {
        seqOf.set(packet, current);
        current = null;
      }
    });
    engine.on("flush", () => {
      if (inFlight) report({ ev: "written", seqs: inFlight });
      // The packets the flush handed over: the first _prevBufferLen of the engine's buffer.
      const packets = engine.writeBuffer.slice(0, engine._prevBufferLen);
      const mine = seqs(packets);
      inFlight = mine.length ? mine : null;
      if (mine.length) {
        const { bytes, frames } = batchBytes(engine, packets);
        report({
          ev: "flush", seqs: mine, packets: packets.length, bytes, frames, transport: engine.transport.name,
          id: socket.id || null,
        });
      }
    });
    engine.on("drain", () => {
      if (inFlight) report({ ev: "written", seqs: inFlight });
      inFlight = null;
    });
    engine.on("upgrade", (transport) => {
      report({ ev: "upgrade", transport: transport.name, extensions: extensions(engine) });
    });
    engine.on("close", () => {
      // Emitted before the engine clears its buffer, so what it still held is readable here.
      const held = seqs(engine.writeBuffer);
      const flying = inFlight || [];
      inFlight = null;
      const unsent = held.filter((s) => !flying.includes(s));
      if (flying.length || unsent.length) report({ ev: "dropped", in_flight: flying, unsent });
    });
  }

  function open() {
    socket = io(url, ioOpts);
    const manager = socket.io;
    manager.on("open", () => watchEngine(manager.engine));
    manager.on("reconnect_failed", () => report({ ev: "reconnect_failed" }));
    socket.onAnyOutgoing((_event, message) => {
      // Fired as the socket hands an emitted packet to the engine (now, or from its send buffer).
      const seq = message !== null && typeof message === "object" ? seqOf.get(message) : undefined;
      current = seq === undefined ? null : seq;
    });
    socket.onAny((event) => {
      report({ ev: "received", event: String(event), id: socket.id || null });
    });
    socket.on("connect", () => {
      const engine = manager.engine;
      report({
        ev: "connect", id: socket.id, recovered: !!socket.recovered, transport: engine.transport.name,
        extensions: extensions(engine),
      });
    });
    socket.on("disconnect", (reason, details) => {
      report({ ev: "disconnect", reason, ...disconnectDetails(details), active: socket.active });
    });
    socket.on("connect_error", (err) => report({ ev: "connect_error", message: text(err) }));
  }

  function emit(cmd, json) {
    const before = { connected: socket.connected, id: socket.id || null };
    const message = JSON.parse(json);
    if (message !== null && typeof message === "object") seqOf.set(message, cmd.seq);
    const buffered = socket.sendBuffer.length;
    let threw = "";
    try {
      socket.emit(cmd.event, message);
    } catch (err) {
      threw = (err && err.name ? err.name + ": " : "") + text(err);
    }
    current = null;
    report({
      ev: "emit", seq: cmd.seq, threw, connected_before: before.connected, id_before: before.id,
      connected: socket.connected, id: socket.id || null, buffered: socket.sendBuffer.length > buffered,
    });
  }

  function handle(cmd) {
    if (cmd.op === "emit") header = cmd;
    else if (cmd.op === "replace") {
      socket.disconnect();
      open();
    }
  }

  let closing = false;
  function shutdown() {
    if (closing) return;
    closing = true;
    try {
      if (socket) socket.disconnect();
    } catch (_) {
      // exiting anyway
    }
    process.exit(0);
  }
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);

  // Lines can be megabytes (a 16 MB message): chunks are kept apart and joined once per line.
  let parts = [];
  let header = null; // an emit waiting for its payload line
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => {
    let start = 0;
    let nl;
    while ((nl = chunk.indexOf("\n", start)) >= 0) {
      parts.push(chunk.slice(start, nl));
      const line = parts.join("");
      parts = [];
      start = nl + 1;
      if (header !== null) {
        // The line after an emit header is the message's JSON, as imdiag encoded it.
        const cmd = header;
        header = null;
        emit(cmd, line);
      } else if (line.trim()) {
        handle(JSON.parse(line));
      }
    }
    if (start < chunk.length) parts.push(chunk.slice(start));
  });
  process.stdin.on("end", shutdown);
  process.stdin.on("close", shutdown);
  process.stdin.on("error", shutdown);

  const versions = { node: process.versions.node };
  for (const name of ["socket.io-client", "engine.io-client", "socket.io-parser", "engine.io-parser", "ws"]) {
    try {
      versions[name] = packageVersion(name, clientDir);
    } catch (_) {
      versions[name] = "unknown";
    }
  }
  report({ ev: "ready", versions });
  open();
}

main();

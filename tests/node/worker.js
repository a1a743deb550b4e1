"use strict";
/*
 * A real socket.io-client worker for the tests and the tap benchmark, driven by JSON lines.
 *
 * Usage: IMDIAG_NODE_PREFIX=<dir with node_modules> node worker.js '{"url":"http://127.0.0.1:3001/worker","options":{...},"count":1}'
 * (the pinned packages, as imdiag/masters/node_packages.py locates them; master.js loads them the same way).
 * Each of `count` sockets is its own Manager (its own Engine.IO session). Options are passed to
 * io() as they are (defaults: the library's, i.e. polling then the upgrade to websocket).
 * Commands on stdin, one JSON object per line:
 *   {"op":"emit","socket":0,"event":"message","message":{...},"ack":true,"binary":["<base64>",...]}
 *       binary: Buffers put in message.payload.attachments (so the event is a BINARY_EVENT)
 *   {"op":"emit_fixture","socket":0,"path":"fixtures/data_sync.json","type":"worker:data:sync"}
 *   {"op":"bench","socket":0,"bytes":1024,"count":200,"window":1}  emits with acks, reports timings
 *   {"op":"disconnect"}  {"op":"exit"}
 * Reports on stdout, one JSON object per line: connect (id, sid, transport), upgrade, disconnect
 * (reason, description), connect_error (message), ack (seq), bench (seconds, latencies_ms).
 */
const fs = require("fs");
const Module = require("module");
const path = require("path");
const readline = require("readline");

const prefix = process.env.IMDIAG_NODE_PREFIX;
const load = prefix ? Module.createRequire(path.join(prefix, "package.json")) : require;
const { io } = load("socket.io-client");

const config = JSON.parse(process.argv[2]);
const sockets = [];
let seq = 0;

function report(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function describe(value) {
  if (value === undefined || value === null) return null;
  if (value instanceof Error) return value.message;
  if (typeof value === "object") {
    const out = {};
    for (const key of ["description", "message", "type", "context"]) {
      if (value[key] !== undefined) out[key] = describe(value[key]);
    }
    return out;
  }
  return String(value);
}

for (let i = 0; i < (config.count || 1); i++) {
  const socket = io(config.url, Object.assign({ forceNew: true }, config.options || {}));
  socket.io.on("open", () => {
    // Each new Engine.IO session (the first, and every reconnect): its upgrade may come before "connect".
    const engine = socket.io.engine;
    engine.on("upgrade", (transport) => report({ event: "upgrade", socket: i, sid: engine.id, transport: transport.name }));
  });
  socket.on("connect", () => {
    const engine = socket.io.engine;
    report({ event: "connect", socket: i, id: socket.id, sid: engine.id, transport: engine.transport.name });
  });
  socket.on("disconnect", (reason, details) => report({ event: "disconnect", socket: i, reason, details: describe(details) }));
  socket.on("connect_error", (err) => report({ event: "connect_error", socket: i, message: err.message, description: describe(err.description) }));
  sockets.push(socket);
}

function emit(socket, event, message, ack) {
  const n = ++seq;
  if (ack) {
    socket.emit(event, message, (...args) => report({ event: "ack", seq: n, args }));
  } else {
    socket.emit(event, message);
  }
  report({ event: "emitted", seq: n });
}

async function bench(socket, cmd) {
  const payload = "x".repeat(Math.max(0, cmd.bytes - 40));
  const latencies = [];
  let inFlight = 0;
  let sent = 0;
  let done = 0;
  const start = process.hrtime.bigint();
  await new Promise((resolve) => {
    const pump = () => {
      while (sent < cmd.count && inFlight < cmd.window) {
        const t0 = process.hrtime.bigint();
        inFlight++;
        sent++;
        socket.emit("message", { type: "bench", payload }, () => {
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          inFlight--;
          done++;
          if (done === cmd.count) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  report({ event: "bench", seconds, count: cmd.count, bytes: cmd.bytes, latencies_ms: latencies });
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = JSON.parse(line);
  const socket = sockets[cmd.socket || 0];
  if (cmd.op === "emit") {
    const message = cmd.message;
    if (cmd.binary) {
      message.payload = Object.assign({}, message.payload, { attachments: cmd.binary.map((b) => Buffer.from(b, "base64")) });
    }
    emit(socket, cmd.event || "message", message, cmd.ack);
  } else if (cmd.op === "emit_fixture") {
    const fixture = JSON.parse(fs.readFileSync(cmd.path, "utf8"));
    const messages = Array.isArray(fixture) ? fixture : fixture.messages;
    emit(socket, cmd.event || "message", messages.find((m) => m.type === cmd.type), cmd.ack);
  } else if (cmd.op === "bench") {
    bench(socket, cmd);
  } else if (cmd.op === "disconnect") {
    for (const s of sockets) s.disconnect();
    report({ event: "disconnected" });
  } else if (cmd.op === "exit") {
    for (const s of sockets) s.disconnect();
    process.exit(0);
  }
});
process.stdin.on("end", () => process.exit(0));

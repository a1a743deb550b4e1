"use strict";
/*
 * The real Node.js Socket.IO master imdiag measures against: a socket.io v4 Server on
 * http.createServer, with nothing emulated on top (defaults except maxHttpBufferSize, path).
 *
 * Usage: node master.js '{"limit":1000000,"namespace":"/","path":"/socket.io/","host":"127.0.0.1","port":0}'
 *
 * It reports to its parent as JSON lines on stdout, one per observation, each written with a
 * blocking write as the server dispatches, so the parent's ledger order is the server's order:
 *   {"event":"listening","port":N,"versions":{...}}
 *   {"event":"connect","sid":..,"namespace":..}
 *   {"event":"arrival","sid","namespace","name","message":{"type","id"},"digest","bytes","connected"}
 *   {"event":"disconnect","sid","namespace","reason"}
 *   {"event":"error","logger","message","error","decode","sid"}
 * It exits on SIGTERM/SIGINT and when its stdin closes, so it never outlives its parent.
 * Required as a module, it only exports its canonical JSON digest (for the tests).
 */

const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const Module = require("module");
const path = require("path");

// The pinned npm packages: from the directory imdiag chose (IMDIAG_NODE_PREFIX, see
// imdiag/masters/node_packages.py), else next to this file (a clone after `make node`).
const prefix = process.env.IMDIAG_NODE_PREFIX;
const load = prefix ? Module.createRequire(path.join(prefix, "package.json")) : require;
const { Server } = load("socket.io");

function packageVersion(name) {
  // Packages hide package.json behind "exports": walk up from the resolved entry point.
  let dir = path.dirname(load.resolve(name));
  for (;;) {
    const file = path.join(dir, "package.json");
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
      if (pkg.name === name && pkg.version) return pkg.version;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
}

function report(obj) {
  // fs.writeSync, not process.stdout: stdout on a pipe queues in memory once the pipe is full
  // (measured), so lines could be lost on exit. A blocking write keeps each line in dispatch
  // order and on the pipe before the server goes on; a slow parent slows the server instead.
  const buf = Buffer.from(JSON.stringify(obj) + "\n", "utf8");
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off);
    } catch (err) {
      if (err.code === "EAGAIN") continue; // fd 1 made non-blocking by someone: retry
      process.exit(0); // EPIPE: the parent is gone
    }
  }
}

function cmpCodePoints(a, b) {
  // Python sorts keys by code point; JS's default sort is by UTF-16 unit (differs past U+FFFF).
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function canonical(value) {
  // Sorted keys built by hand: JS objects would list integer-like keys first.
  if (Array.isArray(value)) {
    return "[" + value.map((v) => (v === undefined || typeof v === "function" ? "null" : canonical(v))).join(",") + "]";
  }
  if (value !== null && typeof value === "object" && typeof value.toJSON !== "function") {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined && typeof value[k] !== "function")
      .sort(cmpCodePoints);
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
  }
  const text = JSON.stringify(value);
  return text === undefined ? "null" : text;
}

/** The ledger digest: sha256 of canonical JSON (sorted keys, compact), 16 hex digits. */
function digest(message) {
  return crypto.createHash("sha256").update(canonical(message), "utf8").digest("hex").slice(0, 16);
}

function errorText(err) {
  if (err === undefined || err === null) return "";
  if (err instanceof Error) return (err.name && err.name !== "Error" ? err.name + ": " : "") + err.message;
  return String(err);
}

function main() {
  const opts = Object.assign(
    { limit: 1e6, namespace: "/", path: "/socket.io/", host: "127.0.0.1", port: 0 },
    JSON.parse(process.argv[2] || "{}"),
  );
  if (!Number.isInteger(opts.limit) || opts.limit < 1) {
    process.stderr.write(`invalid limit ${opts.limit}\n`);
    process.exit(2);
  }

  const httpServer = http.createServer();
  const io = new Server(httpServer, { maxHttpBufferSize: opts.limit, path: opts.path });
  const nsp = io.of(opts.namespace);

  io.engine.on("connection_error", (err) => {
    const context = err.context ? " " + JSON.stringify(err.context) : "";
    report({ event: "error", logger: "engine.io", message: "connection_error", error: `${err.code} ${err.message}${context}`, decode: false });
  });

  io.engine.on("connection", (conn) => {
    // The Engine.IO session's own close reason and its cause (e.g. "payload too large").
    conn.on("close", (reason, description) => {
      // "parse error": an Engine.IO packet arrived that engine.io-parser could not decode.
      const decode = reason === "parse error";
      if (decode || description) {
        report({ event: "error", logger: "engine.io", message: `session ${conn.id} closed: ${reason}`, error: errorText(description), decode });
      }
    });
  });

  nsp.on("connection", (socket) => {
    const ns = socket.nsp.name;
    report({ event: "connect", sid: socket.id, namespace: ns });
    // socket.io-parser throws on an EVENT it cannot decode (invalid JSON -> "invalid payload");
    // socket.io's Client catches it, emits "error" on each joined socket, then closes the session.
    socket.on("error", (err) => {
      report({ event: "error", logger: "socket.io", message: `socket ${socket.id} error`, error: errorText(err), decode: err instanceof Error, sid: socket.id });
    });
    socket.onAny((name, ...args) => {
      const ack = args.length && typeof args[args.length - 1] === "function" ? args.pop() : null;
      const msg = args[0];
      const isObject = msg !== null && typeof msg === "object" && !Array.isArray(msg);
      // The arrival is reported whatever the digest does: a message the handler received is
      // delivered (a nesting deeper than the JS stack throws RangeError from canonical()).
      let text, hash;
      try {
        text = JSON.stringify(msg);
        hash = digest(msg);
      } catch (err) {
        report({ event: "error", logger: "imdiag.node", message: `the digest of an arrival on ${socket.id} failed`, error: errorText(err), decode: false });
        hash = "";
      }
      report({
        event: "arrival",
        sid: socket.id,
        namespace: ns,
        name,
        // Strings only, as the python ledger keeps them: a type of any other shape is no type.
        message: isObject ? { type: typeof msg.type === "string" ? msg.type : null, id: typeof msg.id === "string" ? msg.id : null } : null,
        digest: hash,
        bytes: text === undefined ? 4 : Buffer.byteLength(text),
        // onAny runs before socket.io's own "ignore packet received after disconnection" check.
        connected: socket.connected,
      });
      if (ack) ack(true);
    });
    socket.on("disconnect", (reason) => {
      report({ event: "disconnect", sid: socket.id, namespace: ns, reason });
    });
  });

  let closing = false;
  function shutdown() {
    if (closing) return;
    closing = true;
    io.close();
    process.exit(0);
  }
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  process.stdin.on("end", shutdown);
  process.stdin.on("close", shutdown);
  process.stdin.on("error", shutdown);
  process.stdin.resume();

  httpServer.on("error", (err) => {
    process.stderr.write(`cannot listen on ${opts.host}:${opts.port}: ${err.message}\n`);
    process.exit(3);
  });
  httpServer.listen(opts.port, opts.host, () => {
    const versions = { node: process.versions.node };
    for (const name of ["socket.io", "engine.io", "ws", "socket.io-parser", "engine.io-parser"]) {
      try {
        versions[name] = packageVersion(name);
      } catch (_) {
        // a nested dependency not resolvable from here: its version is unknown, not an error
        versions[name] = "unknown";
      }
    }
    report({ event: "listening", port: httpServer.address().port, versions });
  });
}

if (require.main === module) {
  main();
}

// Exported for the interop tests, which compare these with their python counterparts.
module.exports = { canonical, digest };

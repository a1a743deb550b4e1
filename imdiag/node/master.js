"use strict";
/*
 * The real Node.js Socket.IO master imdiag measures against: a master host (the protocol is in
 * imdiag/masters/child.py) serving one socket.io v4 Server on http.createServer per master it is
 * asked for, with nothing emulated on top (defaults except maxHttpBufferSize, path, and
 * connectionStateRecovery when a start command asks for it with "csr": true).
 *
 * Usage: node master.js, then one JSON command per line on stdin:
 *   {"cmd":"start","key":"1","limit":1000000,"namespace":"/","path":"/socket.io/","host":"127.0.0.1","port":0,"csr":false}
 *     csr: connectionStateRecovery on (socket.io's defaults), and the master then emits one small
 *     "imdiag:tick" event to each worker at once and every second, as real masters send events:
 *     a client can only recover its session once it holds the offset of a received event.
 *   {"cmd":"stop","key":"1"}
 * It reports to its parent as JSON lines on stdout, one per observation, each written with a
 * blocking write as the server dispatches, so the parent's ledger order is the server's order:
 *   {"event":"ready","versions":{...}}
 *   {"key","event":"listening","port":N} | {"key","event":"failed","error"} | {"key","event":"stopped"}
 *   {"key","event":"connect","sid":..,"namespace":..,"recovered":..}
 *   {"key","event":"arrival","sid","namespace","name","message":{"type","id"},"digest","bytes","connected"}
 *     ("digest" "" and "bytes" null for a message with a string id when the start command said "by_id")
 *   {"key","event":"disconnect","sid","namespace","reason","cause"}
 *   {"key","event":"error","logger","message","error","decode","sid"}
 * It exits on SIGTERM/SIGINT and when its stdin closes, so it never outlives its parent.
 * Required as a module, it only exports its canonical JSON and digest (for the tests).
 */

const crypto = require("crypto");
const http = require("http");
const readline = require("readline");

const { load, packageVersion, report } = require("./lines.js");

const { Server } = load("socket.io");

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

// The fast way to canonical JSON, for the JSON values a server decodes: copy each object with
// its keys inserted in sorted order and let JSON.stringify (native) write it. Exact unless a key
// is integer-like (JS lists those first, whatever the insertion order) or holds a character at
// or above U+D800 (JS sorts by UTF-16 unit, python by code point), or is "__proto__" (JSON.parse
// makes it an own key; assigned to a copy it would set the prototype and vanish from the text):
// then canonical() above.
const SLOW = Symbol("slow");
const plainKeys = new Map();

function plainKey(key) {
  let plain = plainKeys.get(key);
  if (plain === undefined) {
    plain = key !== "__proto__" && !/[\uD800-\uFFFF]/.test(key) &&
      !(/^(?:0|[1-9]\d*)$/.test(key) && Number(key) < 4294967295);
    if (plainKeys.size < 100000) plainKeys.set(key, plain);
  }
  return plain;
}

function sortedCopy(value) {
  if (Array.isArray(value)) {
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = sortedCopy(value[i]);
    return out;
  }
  if (value !== null && typeof value === "object") {
    if (typeof value.toJSON === "function") throw SLOW;
    const keys = Object.keys(value);
    for (const key of keys) if (!plainKey(key)) throw SLOW;
    keys.sort();
    const out = {};
    for (const key of keys) out[key] = sortedCopy(value[key]);
    return out;
  }
  return value;
}

// Every key of a value's objects, when they are few (a replacer list is read for each object).
const LISTED_KEYS = 256;

function collectKeys(value, keys) {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (v !== null && typeof v === "object") collectKeys(v, keys);
    }
    return keys.size <= LISTED_KEYS;
  }
  if (typeof value.toJSON === "function") throw SLOW;
  for (const key in value) {
    if (!keys.has(key)) {
      if (!plainKey(key)) throw SLOW;
      keys.add(key);
      if (keys.size > LISTED_KEYS) return false;
    }
    const v = value[key];
    if (v !== null && typeof v === "object" && !collectKeys(v, keys)) return false;
  }
  return true;
}

/** canonical(value), the same text, several times faster on what JSON.parse returns. */
function canonicalText(value) {
  try {
    if (value !== null && typeof value === "object") {
      const keys = new Set();
      if (collectKeys(value, keys)) {
        // JSON.stringify writes each object's keys in the order of a replacer list (natively).
        return JSON.stringify(value, [...keys].sort());
      }
    }
    const text = JSON.stringify(sortedCopy(value));
    return text === undefined ? "null" : text;
  } catch (err) {
    if (err === SLOW) return canonical(value);
    throw err;
  }
}

function digestOf(text) {
  return crypto.createHash("sha256").update(text, "utf8").digest("hex").slice(0, 16);
}

/** The ledger digest: sha256 of canonical JSON (sorted keys, compact), 16 hex digits. */
function digest(message) {
  return digestOf(canonicalText(message));
}

function errorText(err) {
  if (err === undefined || err === null) return "";
  if (err instanceof Error) return (err.name && err.name !== "Error" ? err.name + ": " : "") + err.message;
  return String(err);
}

const TICK_MS = 1000;

function startMaster(servers, opts) {
  const key = String(opts.key);
  if (!Number.isInteger(opts.limit) || opts.limit < 1) {
    report({ key, event: "failed", error: `invalid limit ${opts.limit}` });
    return;
  }
  const httpServer = http.createServer();
  const serverOpts = { maxHttpBufferSize: opts.limit, path: opts.path || "/socket.io/" };
  if (opts.csr) serverOpts.connectionStateRecovery = {};
  const io = new Server(httpServer, serverOpts);
  const nsp = io.of(opts.namespace || "/");

  io.engine.on("connection_error", (err) => {
    const context = err.context ? " " + JSON.stringify(err.context) : "";
    report({ key, event: "error", logger: "engine.io", message: "connection_error", error: `${err.code} ${err.message}${context}`, decode: false });
  });

  io.engine.on("connection", (conn) => {
    // The Engine.IO session's own close reason and its cause (e.g. "payload too large").
    conn.on("close", (reason, description) => {
      // "parse error": an Engine.IO packet arrived that engine.io-parser could not decode.
      const decode = reason === "parse error";
      if (decode || description) {
        report({ key, event: "error", logger: "engine.io", message: `session ${conn.id} closed: ${reason}`, error: errorText(description), decode });
      }
    });
  });

  nsp.on("connection", (socket) => {
    const ns = socket.nsp.name;
    report({ key, event: "connect", sid: socket.id, namespace: ns, recovered: socket.recovered });
    if (opts.csr) {
      let ticks = 0;
      const tick = () => socket.emit("imdiag:tick", { n: ++ticks });
      tick();
      const timer = setInterval(tick, TICK_MS);
      socket.on("disconnect", () => clearInterval(timer));
    }
    // socket.io-parser throws on an EVENT it cannot decode (invalid JSON -> "invalid payload");
    // socket.io's Client catches it, emits "error" on each joined socket, then closes the session.
    socket.on("error", (err) => {
      report({ key, event: "error", logger: "socket.io", message: `socket ${socket.id} error`, error: errorText(err), decode: err instanceof Error, sid: socket.id });
    });
    socket.onAny((name, ...args) => {
      const ack = args.length && typeof args[args.length - 1] === "function" ? args.pop() : null;
      const msg = args[0];
      const isObject = msg !== null && typeof msg === "object" && !Array.isArray(msg);
      // One serialization for both: sorted keys do not change JSON.stringify's length. The
      // arrival is reported whatever the digest does: a message the handler received is
      // delivered (JSON.parse reads any depth; a nesting deeper than the JS stack throws
      // RangeError from the sorted copy), without a digest it is still found by its id.
      // by_id: the sender finds a message with a string id by that id (a sweep's are unique)
      // and knows its sizes: it is recorded as arrived, neither re-encoded nor digested.
      const counted = !(opts.by_id && isObject && typeof msg.id === "string");
      let hash = "";
      let bytes = counted ? 0 : null;
      try {
        if (counted) {
          const text = canonicalText(msg);
          hash = digestOf(text);
          bytes = Buffer.byteLength(text);
        }
      } catch (err) {
        report({ key, event: "error", logger: "imdiag.node", message: `the digest of an arrival on ${socket.id} failed`, error: errorText(err), decode: false, sid: socket.id });
      }
      report({
        key,
        event: "arrival",
        sid: socket.id,
        namespace: ns,
        name,
        // Strings only, as the python ledger keeps them: a type of any other shape is no type
        // (and a deeply nested one would not fit in a report line).
        message: isObject ? { type: typeof msg.type === "string" ? msg.type : null, id: typeof msg.id === "string" ? msg.id : null } : null,
        digest: hash,
        bytes,
        // onAny runs before socket.io's own "ignore packet received after disconnection" check.
        connected: socket.connected,
      });
      if (ack) ack(true);
    });
    // The description is engine.io's cause of a "transport error": "payload too large" for a
    // POST over maxHttpBufferSize, "RangeError: Max payload size exceeded" for a frame.
    socket.on("disconnect", (reason, description) => {
      report({ key, event: "disconnect", sid: socket.id, namespace: ns, reason, cause: errorText(description) });
    });
  });

  const host = opts.host || "127.0.0.1";
  const port = opts.port || 0;
  httpServer.once("error", (err) => {
    report({ key, event: "failed", error: `cannot listen on ${host}:${port}: ${err.message}` });
  });
  httpServer.listen(port, host, () => {
    servers.set(key, io);
    report({ key, event: "listening", port: httpServer.address().port });
  });
}

function stopMaster(servers, key) {
  const io = servers.get(key);
  servers.delete(key);
  if (!io) {
    report({ key, event: "stopped" });
    return;
  }
  // io.close() disconnects every socket (their "disconnect" lines come first), then the server.
  io.close(() => report({ key, event: "stopped" }));
}

function main() {
  const versions = { node: process.versions.node };
  for (const name of ["socket.io", "engine.io", "ws", "socket.io-parser", "engine.io-parser"]) {
    try {
      versions[name] = packageVersion(name);
    } catch (_) {
      // a nested dependency not resolvable from here: its version is unknown, not an error
      versions[name] = "unknown";
    }
  }
  const servers = new Map();

  let closing = false;
  function shutdown() {
    if (closing) return;
    closing = true;
    for (const io of servers.values()) io.close();
    process.exit(0);
  }
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);

  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => {
    let command;
    try {
      command = JSON.parse(line);
    } catch (_) {
      return; // not from imdiag; nothing to answer
    }
    if (command.cmd === "start") startMaster(servers, command);
    else if (command.cmd === "stop") stopMaster(servers, String(command.key));
  });
  lines.on("close", shutdown);
  process.stdin.on("error", shutdown);
  report({ event: "ready", versions });
}

if (require.main === module) {
  main();
}

// Exported for the interop tests, which compare these with their python counterparts.
module.exports = { canonical, canonicalText, digest };

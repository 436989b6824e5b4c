/* telegive-draw in the browser: the rules of utils/draw.py (versions 1 and 2) recomputed with
   WebCrypto's SHA-256, so that anyone can check a draw without Python. No DOM here (the page is
   draw-page.js); node runs this file too, against the vectors Python wrote (tests/vectors/).
   Every check and every message follows utils/draw.py's check_draw and check_proof, in the same
   order; the one check this file cannot make is the beacon's BLS signature. */
(function (root) {
  "use strict";
  const ALGORITHM = "telegive-draw";
  const GENESIS = "0".repeat(64);
  const INCOMPLETE = "incomplete chain";
  const DOMAINS = { 1: "telegive-draw-v1", 2: "telegive-draw-v2" };
  const TWO64 = 1n << 64n;
  const HEX64 = /^[0-9a-f]{64}$/;
  const HEX_SALT = /^[0-9a-f]{32}$/;
  const HEX_PAIRS = /^(?:[0-9a-f]{2})+$/;
  const HEX_FIELDS = ["seed", "commitment", "next_commitment", "previous_hash", "entrants_hash"];
  const INT_FIELDS = ["sequence", "entrant_count", "requested_count", "unclaimed_count"];
  const COMMITTED = ["entrant_root", "entrant_count", "entrants_hash", "entrants_committed_at"];
  const MOMENTS = ["entrants_committed_at", "randomness_fixed_at", "committed_at", "drawn_at"];
  // League of Entropy's quicknet (utils/drand.py pins the same facts).
  const QUICKNET = {
    hash: "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
    genesis_time: 1692803367,
    period: 3,
  };
  const utf8 = new TextEncoder();

  // --- JSON as Python reads it: integers exact (BigInt beyond 2^53), floats kept apart ---------

  class PyFloat {
    constructor(value) {
      this.value = value;
    }
  }

  function parse(text) {
    let at = 0;
    const fail = () => {
      throw new SyntaxError("not JSON at " + at);
    };
    const space = () => {
      while (at < text.length && " \t\n\r".includes(text[at])) at++;
    };
    const number = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
    function value() {
      space();
      const c = text[at];
      if (c === "{") {
        at++;
        const object = Object.create(null);
        space();
        if (text[at] === "}") return at++, object;
        for (;;) {
          space();
          if (text[at] !== '"') fail();
          const key = string();
          space();
          if (text[at++] !== ":") fail();
          object[key] = value();
          space();
          const next = text[at++];
          if (next === "}") return object;
          if (next !== ",") fail();
        }
      }
      if (c === "[") {
        at++;
        const array = [];
        space();
        if (text[at] === "]") return at++, array;
        for (;;) {
          array.push(value());
          space();
          const next = text[at++];
          if (next === "]") return array;
          if (next !== ",") fail();
        }
      }
      if (c === '"') return string();
      const words = [["true", true], ["false", false], ["null", null], ["NaN", new PyFloat(NaN)],
        ["Infinity", new PyFloat(Infinity)], ["-Infinity", new PyFloat(-Infinity)]];
      for (const [word, result] of words) {
        if (text.startsWith(word, at)) return (at += word.length), result;
      }
      number.lastIndex = at;
      const match = number.exec(text);
      if (!match) fail();
      at += match[0].length;
      if (match[1] === undefined && match[2] === undefined) {
        const big = BigInt(match[0]);
        return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big;
      }
      return new PyFloat(Number(match[0]));
    }
    function string() {
      at++;
      let out = "";
      for (;;) {
        const c = text[at++];
        if (c === undefined || c < " ") fail();
        if (c === '"') return out;
        if (c !== "\\") {
          out += c;
          continue;
        }
        const e = text[at++];
        if (e === "u") {
          const hex = text.slice(at, at + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail();
          out += String.fromCharCode(parseInt(hex, 16));
          at += 4;
        } else {
          const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
          if (!(e in simple)) fail();
          out += simple[e];
        }
      }
    }
    const result = value();
    space();
    if (at !== text.length) fail();
    return result;
  }

  const isInt = (v) => typeof v === "number" || typeof v === "bigint";
  const isObject = (v) =>
    v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof PyFloat);
  const isStr = (v) => typeof v === "string";
  const has = (object, key) => Object.prototype.hasOwnProperty.call(object, key);
  const get = (object, key) => (isObject(object) && has(object, key) ? object[key] : undefined);
  const big = (v) => BigInt(v);

  function byCodePoint(a, b) {
    const x = Array.from(a, (c) => c.codePointAt(0));
    const y = Array.from(b, (c) => c.codePointAt(0));
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
    return x.length - y.length;
  }

  function pyFloat(x) {
    if (Number.isNaN(x)) return "NaN";
    if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
    if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
    const [mantissa, exp] = x.toExponential().split("e");
    const e = Number(exp);
    const sign = mantissa[0] === "-" ? "-" : "";
    const digits = mantissa.replace(/[-.]/g, "");
    if (e < -4 || e >= 16) {
      const m = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits;
      return sign + m + "e" + (e < 0 ? "-" : "+") + String(Math.abs(e)).padStart(2, "0");
    }
    if (e < 0) return sign + "0." + "0".repeat(-e - 1) + digits;
    const whole = digits.slice(0, e + 1).padEnd(e + 1, "0");
    return sign + whole + "." + (digits.slice(e + 1) || "0");
  }

  // Python's json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).
  function canonical(v) {
    if (v === null) return "null";
    if (v === true) return "true";
    if (v === false) return "false";
    if (isInt(v)) return String(v);
    if (v instanceof PyFloat) return pyFloat(v.value);
    if (isStr(v)) return JSON.stringify(v);
    if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
    const keys = Object.keys(v).sort(byCodePoint);
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
  }

  // Python's ==: numbers (bool, int, float) by value, containers element by element.
  function pyEq(a, b) {
    const num = (v) =>
      typeof v === "boolean" ? BigInt(v) : isInt(v) ? BigInt(v) : v instanceof PyFloat ? v.value : undefined;
    const x = num(a);
    const y = num(b);
    if (x !== undefined || y !== undefined) {
      if (x === undefined || y === undefined) return false;
      if (typeof x === "bigint" && typeof y === "bigint") return x === y;
      return Number(x) === Number(y);
    }
    if (a === undefined) a = null;
    if (b === undefined) b = null;
    if (a === null || b === null || isStr(a) || isStr(b)) return a === b;
    if (Array.isArray(a) || Array.isArray(b)) {
      return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => pyEq(v, b[i]));
    }
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => has(b, k) && pyEq(a[k], b[k]));
  }

  // repr() of the values a message may quote.
  function pyRepr(v) {
    if (v === undefined || v === null) return "None";
    if (v === true) return "True";
    if (v === false) return "False";
    if (isInt(v)) return String(v);
    if (v instanceof PyFloat) return pyFloat(v.value).replace(/^(-?)(Infinity|NaN)$/, (m, s, w) => s + (w === "NaN" ? "nan" : "inf"));
    if (isStr(v)) {
      const quote = v.includes("'") && !v.includes('"') ? '"' : "'";
      let out = "";
      for (const c of v) {
        const code = c.codePointAt(0);
        if (c === "\\" || c === quote) out += "\\" + c;
        else if (c === "\n") out += "\\n";
        else if (c === "\r") out += "\\r";
        else if (c === "\t") out += "\\t";
        else if (code < 0x20 || (code >= 0x7f && code < 0xa0)) out += "\\x" + code.toString(16).padStart(2, "0");
        else out += c;
      }
      return quote + out + quote;
    }
    if (Array.isArray(v)) return "[" + v.map(pyRepr).join(", ") + "]";
    return "{" + Object.keys(v).map((k) => pyRepr(k) + ": " + pyRepr(v[k])).join(", ") + "}";
  }

  const pyStr = (v) => (isStr(v) ? v : pyRepr(v));
  const list = (values) => "[" + values.map(String).join(", ") + "]";
  const some = (ids, limit = 5) =>
    "[" + ids.slice(0, limit).map(String).join(", ") + (ids.length > limit ? ", ..." : "") + "]";
  const cmp = (a, b) => (big(a) < big(b) ? -1 : big(a) > big(b) ? 1 : 0);
  const sortIds = (ids) => [...ids].sort(cmp);
  const key = (id) => String(id);

  // --- SHA-256 and bytes -------------------------------------------------------------------------

  const subtle = root.crypto && root.crypto.subtle;

  function bytes(...parts) {
    const arrays = parts.map((p) => (isStr(p) ? utf8.encode(p) : p));
    const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
    let at = 0;
    for (const a of arrays) out.set(a, at), (at += a.length);
    return out;
  }
  const fromHex = (hex) => Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));
  const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  async function sha256(data) {
    return new Uint8Array(await subtle.digest("SHA-256", data));
  }
  const sha256Hex = async (data) => toHex(await sha256(data));
  function be8(n) {
    const out = new Uint8Array(8);
    for (let i = 7; i >= 0; i--) (out[i] = Number(n & 255n)), (n >>= 8n);
    return out;
  }

  const commitmentOf = (seed) => sha256Hex(fromHex(seed));

  function recordDigest(record) {
    const body = Object.create(null);
    for (const k of Object.keys(record)) if (k !== "record_hash") body[k] = record[k];
    return sha256Hex(utf8.encode(canonical(body)));
  }

  async function entrantsDigest(ids) {
    return sha256Hex(utf8.encode(ids.map((id) => String(id) + "\n").join("")));
  }

  // --- the entrant tree (step 2b) ----------------------------------------------------------------

  const leafHash = (salt, userId) => sha256(bytes(new Uint8Array([0]), salt, String(userId)));

  async function topFromProof(leaf, index, count, proof) {
    index = big(index);
    count = big(count);
    if (!(0n <= index && index < count)) return null;
    let node = leaf;
    let width = count;
    let used = 0;
    while (width > 1n) {
      const start = index - (index % 4n);
      const group = Number(width - start < 4n ? width - start : 4n);
      if (group > 1) {
        const others = proof.slice(used, used + group - 1);
        if (others.length !== group - 1) return null;
        used += group - 1;
        const place = Number(index - start);
        const children = others.map(fromHex);
        children.splice(place, 0, node);
        node = await sha256(bytes(new Uint8Array([1]), ...children));
      }
      index /= 4n;
      width = (width + 3n) / 4n;
    }
    return used === proof.length ? node : null;
  }

  async function entrantRoot(count, top) {
    count = big(count);
    if (count < 0n || count >= TWO64) return null; // Python's to_bytes would refuse it
    return sha256Hex(bytes(new Uint8Array([2]), be8(count), top));
  }

  async function proofHolds(root, count, userId, salt, index, proof) {
    const top = await topFromProof(await leafHash(fromHex(salt), userId), index, count, proof);
    return top !== null && (await entrantRoot(count, top)) === root;
  }

  async function mixedSeed(seed, randomness, root) {
    const parts = [DOMAINS[2], fromHex(seed), randomness ? fromHex(randomness) : new Uint8Array(0), fromHex(root)];
    return sha256Hex(bytes(...parts));
  }

  // --- the draw (steps 3-7) ----------------------------------------------------------------------

  class RandomStream {
    constructor(seed, version) {
      this.prefix = bytes(fromHex(seed), DOMAINS[version]);
      this.counter = 0n;
    }
    async next() {
      const block = await sha256(bytes(this.prefix, be8(this.counter++)));
      let value = 0n;
      for (let i = 0; i < 8; i++) value = (value << 8n) | BigInt(block[i]);
      return value;
    }
    async below(bound) {
      const limit = TWO64 - (TWO64 % bound);
      for (;;) {
        const value = await this.next();
        if (value < limit) return value % bound;
      }
    }
  }

  // Positions 0..count-1 in the seed's order, lazily: call next() for each (a lazy Fisher-Yates).
  function candidateOrder(seed, count, version) {
    const stream = new RandomStream(seed, version);
    const moved = new Map();
    count = big(count);
    let step = 0n;
    return {
      async next() {
        if (step >= count) return null;
        const chosen = step + (await stream.below(count - step));
        const position = moved.has(chosen) ? moved.get(chosen) : chosen;
        moved.set(chosen, moved.has(step) ? moved.get(step) : step);
        moved.delete(step);
        step++;
        return position;
      },
    };
  }

  function leafIndex(position, excluded) {
    let index = position;
    for (const leaf of excluded) {
      if (leaf > index) break;
      index++;
    }
    return index;
  }

  async function selectWinners(seed, eligible, count, skipped, version) {
    const skip = new Set(skipped.map(key));
    const winners = [];
    const reached = [];
    if (big(count) <= 0n) return [winners, reached];
    const order = candidateOrder(seed, eligible.length, version);
    for (let position; (position = await order.next()) !== null; ) {
      const userId = eligible[Number(position)];
      if (skip.has(key(userId))) {
        reached.push(userId);
        continue;
      }
      winners.push(userId);
      if (big(winners.length) === big(count)) break;
    }
    return [winners, reached];
  }

  async function drawSeed(record) {
    if (pyEq(record.algorithm_version, 1)) return record.seed;
    const beacon = record.beacon;
    const randomness = isObject(beacon) && Object.keys(beacon).length ? beacon.randomness : null;
    return mixedSeed(record.seed, randomness, record.entrant_root);
  }

  // --- times (ISO 8601 with an offset, as datetime.fromisoformat reads them) ----------------------

  const MOMENT =
    /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(?:(Z)|([+-])(\d{2}):?(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$/;

  // Microseconds since the epoch (BigInt), or null: not a time, or one without an offset.
  function moment(value) {
    if (!isStr(value)) return null;
    const m = MOMENT.exec(value.replace(/Z/g, "+00:00"));
    if (!m || !m[9]) return null;
    const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] || 0));
    const date = new Date(Date.UTC(2000, mo - 1, d, h, mi, s));
    date.setUTCFullYear(y);
    if (y < 1 || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
      return null;
    }
    const micros = (f) => BigInt((f || "").padEnd(6, "0"));
    const offset =
      (BigInt(Number(m[10]) * 3600 + Number(m[11]) * 60 + Number(m[12] || 0)) * 1000000n + micros(m[13])) *
      (m[9] === "-" ? -1n : 1n);
    if (offset >= 86400000000n || offset <= -86400000000n) return null;
    return BigInt(date.getTime()) * 1000n + micros(m[7]) - offset;
  }

  function firstRoundAfter(chain, micros) {
    const genesis = big(chain.genesis_time) * 1000000n;
    const period = big(chain.period) * 1000000n;
    if (micros < genesis) return 1n;
    const offset = micros - genesis;
    return offset / period + 2n; // round_at(t) + 1, floor division for t >= genesis
  }

  // --- the verifier ------------------------------------------------------------------------------

  class Verdict {
    constructor() {
      this.problems = []; // {text, record, cat}: cat says which fact of the record failed
      this.unchecked = []; // {text, record, kind}
      this.notes = [];
    }
    get incomplete() {
      return this.problems.some((p) => p.text.startsWith(INCOMPLETE));
    }
  }

  const isHex64 = (v) => isStr(v) && HEX64.test(v);

  function proven(entry) {
    return (
      isInt(entry.leaf_index) &&
      isStr(entry.salt) &&
      HEX_SALT.test(entry.salt) &&
      Array.isArray(entry.proof) &&
      entry.proof.every(isHex64)
    );
  }

  function shapeProblems(record) {
    if (!isObject(record)) return ["malformed record: not a JSON object"];
    const version = get(record, "algorithm_version");
    if (get(record, "algorithm") !== ALGORITHM || !isInt(version) || !(pyEq(version, 1) || pyEq(version, 2))) {
      return [`unknown algorithm ${pyRepr(get(record, "algorithm"))} v${pyRepr(version)}`];
    }
    const wrong = HEX_FIELDS.filter((f) => !isHex64(get(record, f)));
    wrong.push(...INT_FIELDS.filter((f) => !isInt(get(record, f))));
    if (!["draw", "reroll"].includes(get(record, "kind"))) wrong.push("kind");
    const replaced = get(record, "replaced_user_id");
    if (!has(record, "replaced_user_id") || (replaced !== null && !isInt(replaced))) wrong.push("replaced_user_id");
    const exclusions = get(record, "exclusions");
    if (!Array.isArray(exclusions) || !exclusions.every(isInt)) wrong.push("exclusions");
    for (const [field, keys] of [["winners", ["position", "user_id"]], ["skipped", ["user_id"]]]) {
      const entries = get(record, field);
      const fine =
        Array.isArray(entries) &&
        entries.every(
          (e) => isObject(e) && keys.every((k) => isInt(get(e, k))) && (pyEq(version, 1) || proven(e))
        );
      if (!fine) wrong.push(field);
    }
    if (pyEq(version, 2)) {
      if (!isHex64(get(record, "entrant_root"))) wrong.push("entrant_root");
      wrong.push(...MOMENTS.filter((f) => moment(get(record, f)) === null));
      const beacon = has(record, "beacon") ? record.beacon : "missing";
      if (
        beacon !== null &&
        !(
          isObject(beacon) &&
          isHex64(get(beacon, "chain_hash")) &&
          isInt(get(beacon, "round")) &&
          isHex64(get(beacon, "randomness")) &&
          isStr(get(beacon, "signature")) &&
          HEX_PAIRS.test(beacon.signature)
        )
      ) {
        wrong.push("beacon");
      }
    }
    return wrong.length ? [`malformed record: ${wrong.join(", ")}`] : [];
  }

  class History {
    constructor(entrants, chains, verdict) {
      this.entrants = entrants;
      this.chains = new Map([[QUICKNET.hash, QUICKNET]]);
      for (const chain of chains || []) if (!this.chains.has(chain.hash)) this.chains.set(chain.hash, chain);
      this.verdict = verdict;
      this.first = null;
      this.previous = null;
      this.everWon = new Map(); // key: user id
      this.current = new Map(); // key: [user id, position]
      this.leafOf = new Map(); // key: leaf index
    }

    async check(record, add) {
      await this.chainProblems(record, add);
      if (pyEq(record.algorithm_version, 2)) {
        this.commitmentProblems(record, add);
        await this.beaconProblems(record, add);
        await this.proofOutcomeProblems(record, add);
      }
      if (this.entrants !== null) await this.listOutcomeProblems(record, add);
      else if (pyEq(record.algorithm_version, 1)) {
        this.verdict.unchecked.push({
          text: `record ${record.sequence}: a version 1 record needs the entrant list`,
          record: record.sequence,
          kind: "entrants",
        });
      }
    }

    async chainProblems(record, add) {
      const first = this.first === null;
      const previousHash = first ? GENESIS : get(this.previous, "record_hash");
      if (!pyEq(await recordDigest(record), get(record, "record_hash"))) add("chain", "record_hash does not match its content");
      if (!pyEq(record.previous_hash, previousHash)) add("chain", "previous_hash does not link to the record before it");
      if ((await commitmentOf(record.seed)) !== record.commitment) add("seed", "the seed does not match its commitment");
      if (!first && !pyEq(record.commitment, get(this.previous, "next_commitment"))) {
        add("seed", "commitment is not the one the previous record announced");
      }
      if (!first && !pyEq(record.algorithm_version, this.first.algorithm_version)) {
        add("chain", "a chain keeps its first record's algorithm version");
      }
      const kind = first ? "draw" : "reroll";
      if (record.kind !== kind) add("chain", `kind should be '${kind}': only the first record is a draw`);
      this.checkExclusions(record.exclusions, first, add);
      const replaced = record.replaced_user_id;
      if (replaced !== null && first) add("winners", "a first draw replaces no one");
      else if (replaced !== null && !this.current.has(key(replaced))) {
        add("winners", `replaced user ${replaced} is not a current winner`);
      } else if (replaced !== null && !pyEq(record.requested_count, 1)) {
        add("winners", "a replacement draws exactly one winner (requested_count 1)");
      }
      const winners = record.winners.map((w) => w.user_id);
      if (new Set(winners.map(key)).size !== winners.length) add("winners", "a user wins twice in the record");
      const repeated = winners.filter((u) => this.everWon.has(key(u)));
      if (repeated.length) add("winners", `winners ${some(repeated)} have won before`);
      const positions = record.winners.map((w) => w.position);
      const expected = this.positions(replaced, winners.length, first);
      if (positions.map(key).join() !== expected.map(key).join()) {
        add("winners", `winner positions should be ${list(expected)}, the record says ${list(positions)}`);
      }
      const requested = big(record.requested_count);
      if (big(winners.length) + big(record.unclaimed_count) !== requested || !(big(winners.length) <= requested)) {
        add("winners", "winners and unclaimed prizes do not add up to requested_count");
      }
      const skipped = record.skipped.map((e) => key(e.user_id));
      const winnerKeys = new Set(winners.map(key));
      if (skipped.some((u) => winnerKeys.has(u)) || new Set(skipped).size !== skipped.length) {
        add("winners", "a skipped user is listed twice or also as a winner");
      }
      // Skips that only a re-check of every candidate could have made (an excluded entrant, or a
      // pending one asked afresh, is passed over whatever the setting).
      const rechecked = record.skipped.filter(
        (e) => get(e, "reason") !== "excluded" && get(e, "pending") !== true,
      );
      if (rechecked.length && get(record, "recheck_subscription") === false) {
        add("winners", "entries are skipped although no subscription re-check was made");
      }
    }

    checkExclusions(claimed, first, add) {
      const everWon = sortIds([...this.everWon.values()]);
      const expected = first ? [] : everWon;
      if (claimed.map(key).join() === expected.map(key).join() && claimed.length === expected.length) return;
      if (first) {
        add("winners", `a first draw excludes no one, the record excludes ${some(claimed)}`);
        return;
      }
      const claimedKeys = new Set(claimed.map(key));
      const missing = everWon.filter((u) => !claimedKeys.has(key(u)));
      const extra = sortIds([...new Map(claimed.map((u) => [key(u), u])).values()].filter((u) => !this.everWon.has(key(u))));
      add(
        "winners",
        "exclusions should be everyone who won in an earlier record (sorted): " +
          `${missing.length} earlier winner(s) missing ${some(missing)}, ` +
          `${extra.length} user(s) who never won ${some(extra)}`
      );
    }

    positions(replaced, count, first) {
      const range = (start, n) => Array.from({ length: n }, (_, i) => big(start) + big(i));
      if (first) return range(1, count);
      if (replaced !== null && this.current.has(key(replaced))) {
        return Array(count).fill(this.current.get(key(replaced))[1]);
      }
      const highest = [...this.current.values()].reduce((m, [, p]) => (big(p) > m ? big(p) : m), 0n);
      return range(highest + 1n, count);
    }

    commitmentProblems(record, add) {
      if (this.first !== null) {
        for (const field of COMMITTED) {
          if (!pyEq(record[field], this.first[field])) add("list", `${field} differs from the first draw's: the list was fixed`);
        }
      }
      const fixedAt = moment(record.randomness_fixed_at);
      if (this.first === null) {
        if (record.randomness_fixed_at !== record.entrants_committed_at) {
          add("list", "a first draw's randomness is fixed when the list is committed");
        }
      } else if (fixedAt < moment(this.previous.drawn_at)) {
        add("beacon", "a reroll's randomness is fixed after the record before it");
      }
      if (fixedAt < moment(record.committed_at)) add("seed", "the randomness was fixed before the seed was committed to");
    }

    async beaconProblems(record, add) {
      const beacon = record.beacon;
      const label = `record ${record.sequence}`;
      if (beacon === null) {
        this.verdict.notes.push(
          `${label}: no public randomness was used (DRAW_BEACON=off): the operator knew this seed before the draw`
        );
        return;
      }
      if ((await sha256Hex(fromHex(beacon.signature))) !== beacon.randomness) {
        add("beacon", "the beacon's randomness is not the SHA-256 of its signature");
      }
      const chain = this.chains.get(beacon.chain_hash);
      if (chain === undefined) {
        this.verdict.unchecked.push({
          text:
            `${label}: beacon chain ${beacon.chain_hash.slice(0, 16)}... is unknown here (give its ` +
            "public facts with --chain): its round and signature were not checked",
          record: record.sequence,
          kind: "chain",
        });
        return;
      }
      const expected = firstRoundAfter(chain, moment(record.randomness_fixed_at));
      if (big(beacon.round) !== expected) {
        add(
          "beacon",
          `the beacon round should be ${expected}, the first published after randomness_fixed_at; the record uses ${beacon.round}`
        );
      }
      // utils/drand.py's verify_round reads the round and the signature's length before the
      // BLS12-381 package is needed; only the pairing itself is left to a relay's page.
      const round = big(beacon.round);
      const length = beacon.signature.length / 2;
      const invalid = "the beacon's signature does not verify: ";
      if (!(1n <= round && round < TWO64)) {
        add("beacon", `${invalid}round ${round} is not a drand round number`);
        return;
      }
      if (length !== 48) {
        add("beacon", `${invalid}the signature of round ${round} is ${length} bytes, not 48`);
        return;
      }
      this.verdict.unchecked.push({
        text: `${label}: the beacon's signature: BLS12-381 is not checked in this browser`,
        record: record.sequence,
        kind: "signature",
      });
    }

    async proofOutcomeProblems(record, add) {
      const root = record.entrant_root;
      const count = record.entrant_count;
      const entries = [
        ...record.winners.map((e) => ["winner", e]),
        ...record.skipped.map((e) => ["skipped", e]),
      ];
      const byLeaf = new Map();
      let broken = false;
      for (const [role, e] of entries) {
        if (!(await proofHolds(root, count, e.user_id, e.salt, e.leaf_index, e.proof))) {
          add("list", `the proof of ${role} ${e.user_id} at leaf ${e.leaf_index} does not lead to entrant_root`);
          broken = true;
        }
        byLeaf.set(key(e.leaf_index), [role, e.user_id]);
      }
      if (broken) return;
      const excludedUsers = record.exclusions.filter((u) => this.leafOf.has(key(u)));
      if (excludedUsers.length !== record.exclusions.length) return;
      const excluded = excludedUsers.map((u) => big(this.leafOf.get(key(u)))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const winners = [];
      const reached = [];
      if (big(record.requested_count) > 0n) {
        const order = candidateOrder(await drawSeed(record), big(count) - big(excluded.length), 2);
        for (let position; (position = await order.next()) !== null; ) {
          const index = leafIndex(position, excluded);
          const found = byLeaf.get(key(index));
          if (found === undefined) {
            add("winners", `the candidate at leaf ${index} is neither a winner nor a skipped entry`);
            return;
          }
          (found[0] === "winner" ? winners : reached).push(found[1]);
          if (big(winners.length) === big(record.requested_count)) break;
        }
      }
      const actual = record.winners.map((w) => w.user_id);
      if (winners.map(key).join() !== actual.map(key).join() || winners.length !== actual.length) {
        add("winners", `winners should be ${list(winners)}, the record says ${list(actual)}`);
      }
      const skipped = record.skipped.map((e) => e.user_id);
      if (reached.map(key).join() !== skipped.map(key).join() || reached.length !== skipped.length) {
        add("winners", "the skipped users are not exactly those reached before the last winner, in order");
      }
    }

    async listOutcomeProblems(record, add) {
      const entrants = this.entrants;
      if ((await entrantsDigest(entrants)) !== record.entrants_hash) {
        add("list", "the entrant list is not the one the draw used (entrants_hash differs)");
      }
      if (big(entrants.length) !== big(record.entrant_count)) {
        add("list", `entrant_count is ${record.entrant_count}, the list has ${entrants.length}`);
      }
      const version = Number(record.algorithm_version);
      if (version === 2) {
        for (const e of [...record.winners, ...record.skipped]) {
          let low = 0;
          let high = entrants.length;
          while (low < high) {
            const mid = (low + high) >> 1;
            if (cmp(entrants[mid], e.user_id) < 0) low = mid + 1;
            else high = mid;
          }
          if (!pyEq(low, e.leaf_index)) add("list", `user ${e.user_id} stands at ${low} in the list, not at leaf ${e.leaf_index}`);
        }
      }
      const excluded = new Set(record.exclusions.map(key));
      const eligible = entrants.filter((u) => !excluded.has(key(u)));
      const skipped = record.skipped.map((e) => e.user_id);
      const [expected, reached] = await selectWinners(await drawSeed(record), eligible, record.requested_count, skipped, version);
      const actual = record.winners.map((w) => w.user_id);
      if (expected.map(key).join() !== actual.map(key).join() || expected.length !== actual.length) {
        add("winners", `winners should be ${list(expected)}, the record says ${list(actual)}`);
      }
      if (reached.map(key).join() !== skipped.map(key).join() || reached.length !== skipped.length) {
        add("winners", "the skipped users are not exactly those reached before the last winner, in order");
      }
      const unclaimed = big(record.requested_count) - big(expected.length);
      if (big(record.unclaimed_count) !== unclaimed) add("winners", `unclaimed_count should be ${unclaimed}`);
    }

    apply(record) {
      const replaced = record.replaced_user_id;
      if (replaced !== null && replaced !== undefined) this.current.delete(key(replaced));
      for (const w of record.winners) {
        this.everWon.set(key(w.user_id), w.user_id);
        this.current.set(key(w.user_id), [w.user_id, w.position]);
        if (has(w, "leaf_index")) this.leafOf.set(key(w.user_id), w.leaf_index);
      }
      if (this.first === null) this.first = record;
      this.previous = record;
    }
  }

  // The whole verification of a giveaway's records (utils/draw.py check_draw). ``entrants``: the
  // ascending entrant list or null; ``chains``: drand chains' facts besides quicknet
  // ({hash, genesis_time, period}); ``witnessedRoot``: a root someone kept from the close.
  async function checkDraw(records, entrants = null, chains = [], witnessedRoot = null) {
    const verdict = new Verdict();
    const problem = (record, cat, text) => verdict.problems.push({ text, record, cat });
    if (!Array.isArray(records) || !records.length) {
      problem(null, "chain", `${INCOMPLETE}: no record`);
      return verdict;
    }
    records.forEach((record, i) => {
      const sequence = isObject(record) ? get(record, "sequence") : undefined;
      if (!isInt(sequence) || big(sequence) !== big(i + 1)) {
        const where = i === 0 ? "the first draw (sequence 1)" : `record ${i + 1}`;
        problem(null, "chain", `${INCOMPLETE}: record ${pyRepr(sequence)} stands where ${where} should be`);
      }
    });
    if (verdict.problems.length) return verdict;
    const history = new History(entrants, chains, verdict);
    for (const record of records) {
      const label = `record ${record.sequence}`;
      const shape = shapeProblems(record);
      if (shape.length) {
        for (const text of shape) problem(record.sequence, "shape", `${label}: ${text}`);
        break;
      }
      await history.check(record, (cat, text) => problem(record.sequence, cat, `${label}: ${text}`));
      if (witnessedRoot !== null && !pyEq(get(record, "entrant_root"), witnessedRoot)) {
        problem(record.sequence, "list", `${label}: entrant_root is not the root published when entries closed`);
      }
      history.apply(record);
    }
    verdict.current = history.current;
    return verdict;
  }

  // One participant's inclusion proof (utils/draw.py check_proof): why it does not hold.
  async function checkProof(proof, records = []) {
    if (!isObject(proof)) return ["malformed proof: not a JSON object"];
    const wrong = isHex64(get(proof, "entrant_root")) ? [] : ["entrant_root"];
    wrong.push(...["entrant_count", "user_id"].filter((f) => !isInt(get(proof, f))));
    if (!proven(proof)) wrong.push("leaf_index, salt or proof");
    if (wrong.length) return [`malformed proof: ${wrong.join(", ")}`];
    const problems = [];
    if (!(await proofHolds(proof.entrant_root, proof.entrant_count, proof.user_id, proof.salt, proof.leaf_index, proof.proof))) {
      problems.push("the proof does not lead from the user's leaf to entrant_root");
    }
    for (const record of records) {
      if (isObject(record) && pyEq(get(record, "algorithm_version"), 2)) {
        if (!pyEq(get(record, "entrant_root"), proof.entrant_root)) {
          problems.push(`record ${pyStr(get(record, "sequence"))} commits to another root`);
        } else if (!pyEq(get(record, "entrant_count"), proof.entrant_count)) {
          problems.push(`record ${pyStr(get(record, "sequence"))} commits to another count`);
        }
      }
    }
    return problems;
  }

  const api = {
    QUICKNET,
    parse,
    canonical,
    checkDraw,
    checkProof,
    commitmentOf,
    mixedSeed,
    recordDigest,
    RandomStream,
    candidateOrder,
    digest: (text) => sha256Hex(utf8.encode(text)),
    firstRoundAfter,
    moment,
    available: () => Boolean(subtle),
  };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.TelegiveDraw = api;
})(typeof globalThis === "object" ? globalThis : this);

/* The public draw page's script (routes/pages.py): reads the public draw document, checks it
   with telegive-draw.js, says per fact whether it checked out and gives one verdict, and answers
   "Was I counted?" from one inclusion proof checked here against the committed root. */
(function () {
  "use strict";
  const D = window.TelegiveDraw;
  const $ = (id) => document.getElementById(id);
  const data = document.body.dataset;

  function say(state, title, reason) {
    $("verdict").className = "verdict " + state;
    $("verdict").textContent = title;
    $("reason").textContent = reason || "";
  }

  async function fetchJson(url) {
    const response = await fetch(url, { cache: "no-store", credentials: "omit" });
    let body = null;
    try {
      body = D.parse(await response.text());
    } catch (error) {
      body = null;
    }
    return { status: response.status, body, retry: response.headers.get("Retry-After") };
  }

  // The text the page should show for data-field "N.path" (N: a record's sequence, 0: the
  // document itself).
  function expected(doc, records, field) {
    const [n, ...path] = field.split(".");
    let value = n === "0" ? doc : records[Number(n) - 1];
    for (const part of path) value = value !== null && typeof value === "object" ? value[part] : undefined;
    return value === undefined || value === null ? undefined : String(value);
  }

  // The facts the page states that the record does not: fields, and lists of winners (a
  // record's, in order, or the winners now by position).
  function misstated(doc, records, current) {
    const wrong = [];
    for (const el of document.querySelectorAll("[data-field]")) {
      if (expected(doc, records, el.dataset.field) !== el.textContent.trim()) wrong.push(el.dataset.field);
    }
    for (const list of document.querySelectorAll("[data-winners]")) {
      const n = list.dataset.winners;
      const record = records[Number(n) - 1];
      let winners = record && Array.isArray(record.winners) ? record.winners.map((w) => [w.user_id, w.position]) : null;
      if (n === "now") winners = current ? [...current.values()].sort((a, b) => Number(a[1]) - Number(b[1])) : null;
      const shown = [...list.children].map((li) => li.textContent.trim()).join();
      if (winners && shown !== winners.map(([id, position]) => `#${position} ${id}`).join()) wrong.push(`winners of ${n}`);
    }
    return wrong;
  }

  function mark(verdict, records) {
    const failed = verdict.problems.some((p) => (p.record === null && p.cat === "chain") || p.cat === "shape");
    const stop = verdict.problems.find((p) => p.cat === "shape");
    for (const el of document.querySelectorAll("[data-check]")) {
      const [where, cat] = el.dataset.check.split(":");
      const here = (p) => (where === "*" || String(p.record) === where) && (p.cat === cat || p.cat === "shape");
      const problem = verdict.problems.find(here);
      const record = records[Number(where) - 1];
      let state = "ok";
      let text = "✓ checked";
      if (problem) {
        state = "bad";
        text = "✗ " + problem.text.replace(/^record \d+: /, "");
      } else if (failed && (where === "*" || !stop || Number(where) > Number(stop.record))) {
        state = "none";
        text = "– not checked (an earlier rule failed)";
      } else if (record && String(record.algorithm_version) === "1" && (cat === "winners" || cat === "list")) {
        state = "none";
        text = "– needs the entrant list (version 1)";
      } else if (cat === "beacon") {
        text = "✓ round and randomness checked; signature not checked here";
      }
      el.className = "st " + state;
      el.textContent = text;
    }
  }

  function counted(doc, records) {
    const form = $("counted-form");
    const out = $("counted-result");
    const result = (state, text) => {
      out.className = state;
      out.textContent = text;
    };
    const first = records[0];
    const root = first && first.entrant_root ? first.entrant_root : doc.entrant_commitment && doc.entrant_commitment.entrant_root;
    form.hidden = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const id = $("user-id").value.trim();
      if (!/^[0-9]{1,19}$/.test(id) || BigInt(id) < 1n || BigInt(id) >= 1n << 63n) {
        return result("bad", "That is not a Telegram user id (digits only).");
      }
      result("", "Checking…");
      let answer = { status: 0 };
      try {
        answer = await fetchJson(data.proof + id + ".json");
      } catch (error) {
        // answered below as "could not be made"
      }
      if (answer.status === 404) return result("bad", `not found: ${id} is not among this draw's committed entrants.`);
      if (answer.status === 409) return result("", "Entries are not closed yet: the list is committed when the draw is made.");
      if (answer.status === 429) return result("", `Too many checks from your connection; try again in ${answer.retry || "a few"} s.`);
      if (answer.status !== 200 || !answer.body) return result("bad", `The check could not be made now (HTTP ${answer.status}).`);
      const proof = answer.body;
      const problems = await D.checkProof(proof, records);
      if (String(proof.user_id) !== id) problems.push("it is for another id");
      if (root && proof.entrant_root !== root) problems.push("it leads to another root than this draw's");
      if (problems.length) return result("bad", `not found: the proof the service sent does not hold (${problems[0]}).`);
      const place = BigInt(proof.leaf_index) + 1n;
      result("ok", `counted in this draw: ${id} is entrant ${place} of ${proof.entrant_count}, checked in your browser against the entrant root.`);
    });
  }

  async function main() {
    if (!D || !D.available()) {
      return say("bad", "NOT VERIFIED", "This browser cannot compute SHA-256 on this page (WebCrypto needs https://).");
    }
    let answer = { status: 0 };
    try {
      answer = await fetchJson(data.record);
    } catch (error) {
      // answered below
    }
    if (answer.status !== 200 || !answer.body || typeof answer.body !== "object") {
      return say("bad", "NOT VERIFIED", `The draw record could not be read (HTTP ${answer.status}).`);
    }
    const doc = answer.body;
    const records = Array.isArray(doc.records) ? doc.records : [];
    counted(doc, records);
    if (!records.length) {
      const wrong = misstated(doc, records, null);
      return wrong.length
        ? say("bad", "NOT VERIFIED", "The page states facts other than the record's: " + wrong.join(", "))
        : say("off", "Not drawn yet", "The seed commitment above is fixed; the draw will reveal the seed.");
    }
    const chains = [];
    const beacon = doc.beacon;
    if (beacon && typeof beacon === "object" && typeof beacon.chain_hash === "string") {
      chains.push({ hash: beacon.chain_hash, genesis_time: beacon.genesis_time, period: beacon.period });
    }
    const verdict = await D.checkDraw(records, null, chains);
    const wrong = misstated(doc, records, verdict.current);
    if (wrong.length) {
      verdict.problems.push({ text: "the page states facts other than the record's: " + wrong.join(", "), record: null, cat: "page" });
    }
    mark(verdict, records);
    const unchecked = verdict.unchecked.filter((u) => u.kind !== "signature");
    if (verdict.problems.length) {
      const more = verdict.problems.length - 1;
      return say("bad", "NOT VERIFIED", verdict.problems[0].text + (more ? ` (and ${more} more)` : ""));
    }
    if (unchecked.length) return say("bad", "NOT VERIFIED", "Could not check: " + unchecked[0].text);
    const signatures = verdict.unchecked.length
      ? " The drand round's BLS signature was not checked in this browser: compare it at a relay's link below."
      : "";
    const notes = verdict.notes.length ? " Note: " + verdict.notes.join("; ") : "";
    say(
      "ok",
      "VERIFIED",
      `${records.length} record(s): every winner follows from the committed seed, the beacon and the committed entrant list, and the chain is intact.` +
        signatures +
        notes
    );
  }

  main().catch((error) => say("bad", "NOT VERIFIED", "The check stopped: " + error.message));
})();

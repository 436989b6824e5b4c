/* Runs the vectors Python wrote (tests/vectors/draw-vectors.json) through the browser's verifier
   (web/static/telegive-draw.js) and reports every answer that differs from Python's. The same function
   runs in Chromium (tests/browser/test_draw_page.py injects this file into the page) and under
   node: node tests/vectors/run-vectors.js tests/vectors/draw-vectors.json */
async function runVectors(draw, text) {
  const doc = draw.parse(text);
  const failures = [];
  let checked = 0;
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const expect = (name, expected, got) => {
    checked++;
    if (!same(expected, got)) failures.push({ name, expected, got });
  };
  for (const v of doc.chains) {
    const verdict = await draw.checkDraw(v.records, v.entrants, v.chains, v.witnessed_root);
    expect(v.name, v.browser, {
      problems: verdict.problems.map((p) => p.text),
      unchecked: verdict.unchecked.map((u) => u.kind),
      notes: verdict.notes,
    });
  }
  for (const v of doc.proofs) {
    const records = v.records_of === null ? [] : doc.chains[v.records_of].records;
    expect("proof: " + v.name, v.problems, await draw.checkProof(v.proof, records));
  }
  for (const v of doc.canonical) {
    const text = draw.canonical(draw.parse(v.json));
    expect("canonical: " + v.canonical, [v.canonical, v.sha256], [text, await draw.digest(text)]);
  }
  for (const v of doc.streams) {
    const stream = new draw.RandomStream(v.seed, v.version);
    const values = [];
    for (const bound of v.bounds) values.push(String(await stream.below(BigInt(bound))));
    values.push(String(stream.counter));
    expect(`stream ${v.seed} v${v.version}`, [...v.values, v.calls].map(String), values);
    for (const count of Object.keys(v.orders)) {
      const order = draw.candidateOrder(v.seed, BigInt(count), v.version);
      const positions = [];
      for (let i = 0, p; i < 12 && (p = await order.next()) !== null; i++) positions.push(String(p));
      expect(`order ${v.seed} v${v.version} of ${count}`, v.orders[count].map(String), positions);
    }
  }
  const chain = doc.chains[0].chains[0];
  for (const v of doc.moments) {
    const micros = draw.moment(v.value);
    const round = micros === null ? null : draw.firstRoundAfter(chain, micros);
    expect("moment: " + v.value, [String(v.micros), String(v.first_round)], [String(micros), String(round)]);
  }
  return { checked, failures };
}

if (typeof module === "object" && require.main === module) {
  const path = require("path");
  const draw = require(path.join(__dirname, "..", "..", "web", "static", "telegive-draw.js"));
  const text = require("fs").readFileSync(process.argv[2] || path.join(__dirname, "draw-vectors.json"), "utf8");
  runVectors(draw, text).then(
    (result) => {
      console.log(JSON.stringify(result, (k, v) => (typeof v === "bigint" ? String(v) : v)));
      process.exitCode = result.failures.length ? 1 : 0;
    },
    (error) => {
      console.error(error);
      process.exitCode = 2;
    }
  );
}

// conformance-verdict.mjs: strict verdict over one conformance run's checks.json files.
//
// The conformance CLI's own exit code ignores WARNING checks on the server leg, ignores
// scenarios that a requirement set runs "not scored", and ignores the client's exit code in
// suite mode. mcpgate requires more, so this script re-reads every checks.json and decides:
//
//   * every expected scenario produced a checks.json;
//   * no check is FAILURE or WARNING, unless the expected-failures file lists the scenario
//     (or "scenario:check-id");
//   * the check ids in REQUIRED_SUCCESS are present and SUCCESS (they would otherwise degrade
//     to SKIPPED/INFO/WARNING when a feature is missing);
//   * the client under test exited 0 in every scenario (client leg, from the wrapper's log);
//   * a listed expected failure that now passes is stale and fails the run, as in the CLI.
//
// Usage (run with the Node that runs the conformance CLI):
//   node conformance-verdict.mjs --label L --leg server|client --dir RESULTS_DIR
//        --scenarios FILE [--expected-failures YAML] [--client-exits TSV] [--harness-rc N]
//        [--conformance-js PATH_TO_CLI_INDEX_JS]
// Exit status: 0 pass, 1 fail, 2 usage or input error.
import { readFileSync, readdirSync, existsSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { createRequire } from 'node:module';

// Check ids that must be SUCCESS whenever their scenario runs.
const REQUIRED_SUCCESS = {
  'server-initialize': ['server-initialize', 'server-session-id-visible-ascii'],
  'server-session-lifecycle': [
    'server-session-initialized-accepted',
    'server-session-delete-accepted',
    'server-session-terminated-returns-404',
  ],
  'server-sse-multiple-streams': ['server-accepts-multiple-post-streams'],
  'server-sse-polling': [
    'server-sse-priming-event',
    'server-sse-retry-field',
    'server-sse-disconnect-resume',
  ],
  'json-schema-2020-12': [
    'json-schema-2020-12-tool-found',
    'json-schema-2020-12-$schema',
    'json-schema-2020-12-$defs',
    'json-schema-2020-12-additionalProperties',
    'sep-2106-composition-keywords-preserved',
    'sep-2106-conditional-keywords-preserved',
    'sep-2106-anchor-keyword-preserved',
  ],
  'json-schema-2020-12-preservation': [
    'json-schema-2020-12-client-tool-found',
    'json-schema-2020-12-client-echo-completed',
    'json-schema-2020-12-client-$schema-preserved',
    'json-schema-2020-12-client-$defs-preserved',
    'json-schema-2020-12-client-additionalProperties-preserved',
    'sep-2106-client-composition-keywords-preserved',
    'sep-2106-client-conditional-keywords-preserved',
    'sep-2106-client-anchor-keyword-preserved',
  ],
  'sse-retry': ['client-sse-graceful-reconnect', 'client-sse-retry-timing', 'client-sse-last-event-id'],
  tools_call: ['tool-add-numbers'],
};

const BAD = new Set(['FAILURE', 'WARNING']);
const TIMESTAMP = /-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z)$/;

function usage(msg) {
  process.stderr.write(`conformance-verdict: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) usage(`unexpected argument ${JSON.stringify(a)}`);
    const v = argv[i + 1];
    if (v === undefined) usage(`${a} needs a value`);
    opts[a.slice(2)] = v;
    i++;
  }
  for (const k of ['label', 'leg', 'dir', 'scenarios']) {
    if (!opts[k]) usage(`--${k} is required`);
  }
  if (opts.leg !== 'server' && opts.leg !== 'client') usage('--leg must be server or client');
  return opts;
}

// loadBaseline returns a Map scenario -> Set(check ids) where an empty Set means "whole
// scenario". It reuses the yaml package that ships with the conformance CLI.
function loadBaseline(path, leg, conformanceJs) {
  const baseline = new Map();
  if (!path) return baseline;
  if (!existsSync(path)) usage(`expected-failures file ${path} does not exist`);
  let parseYaml;
  try {
    const req = createRequire(conformanceJs ?? import.meta.url);
    parseYaml = req('yaml').parse;
  } catch (e) {
    usage(`cannot load the yaml package (pass --conformance-js): ${e.message}`);
  }
  const doc = parseYaml(readFileSync(path, 'utf8')) ?? {};
  if (typeof doc !== 'object' || Array.isArray(doc)) usage(`${path}: expected a mapping with server/client keys`);
  for (const key of Object.keys(doc)) {
    if (key !== 'server' && key !== 'client') usage(`${path}: unknown key ${JSON.stringify(key)}`);
  }
  const list = doc[leg] ?? [];
  if (!Array.isArray(list)) usage(`${path}: ${leg} must be a list`);
  for (const entry of list) {
    if (typeof entry !== 'string' || entry === '') usage(`${path}: bad ${leg} entry ${JSON.stringify(entry)}`);
    const i = entry.indexOf(':');
    const scenario = i < 0 ? entry : entry.slice(0, i);
    const check = i < 0 ? '' : entry.slice(i + 1);
    if (!scenario || (i >= 0 && !check)) usage(`${path}: bad ${leg} entry ${JSON.stringify(entry)}`);
    if (!baseline.has(scenario)) baseline.set(scenario, new Set());
    if (check) baseline.get(scenario).add(check);
  }
  return baseline;
}

function findChecksFiles(root) {
  const out = [];
  const walk = (dir, depth) => {
    if (depth > 6) return;
    for (const ent of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, ent.name);
      if (ent.isDirectory()) walk(p, depth + 1);
      else if (ent.name === 'checks.json') out.push(p);
    }
  };
  if (existsSync(root)) walk(root, 0);
  return out;
}

function scenarioOf(file, root, leg) {
  let rel = relative(root, file).split(sep);
  rel.pop(); // checks.json
  let name = rel.join('/');
  const m = TIMESTAMP.exec(name);
  if (!m) return null;
  name = name.slice(0, m.index);
  if (leg === 'server') {
    if (!name.startsWith('server-')) return null;
    name = name.slice('server-'.length);
  }
  return name;
}

function readClientExits(path) {
  const exits = new Map();
  if (!path || !existsSync(path)) return exits;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const [scenario, rc] = line.split('\t');
    if (!exits.has(scenario)) exits.set(scenario, []);
    exits.get(scenario).push(Number(rc));
  }
  return exits;
}

function clip(s, n = 300) {
  s = String(s ?? '').replace(/\s+/g, ' ').trim();
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

// allowedClientErrors returns the client scenarios whose definition in the installed suite
// sets allowClientError (the suite expects the client to fail in them, e.g. to give up
// after repeated 403s in auth/scope-retry-limit). A non-zero exit there is not a failure;
// a timeout still is.
function allowedClientErrors(conformanceJs) {
  const allowed = new Set();
  if (!conformanceJs) return allowed;
  const distDir = dirname(conformanceJs);
  let files = [];
  try {
    files = readdirSync(distDir).filter((f) => f.endsWith('.js'));
  } catch {
    return allowed;
  }
  const re = /this\.name=`([^`]+)`((?:(?!this\.name=)[\s\S]){0,2000}?)this\.allowClientError=!0/g;
  for (const f of files) {
    const src = readFileSync(join(distDir, f), 'utf8');
    for (const m of src.matchAll(re)) allowed.add(m[1]);
  }
  return allowed;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { label, leg, dir } = opts;
  const expected = readFileSync(opts.scenarios, 'utf8')
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
  if (expected.length === 0) usage(`${opts.scenarios} lists no scenarios`);
  const baseline = loadBaseline(opts['expected-failures'], leg, opts['conformance-js']);
  const exits = readClientExits(opts['client-exits']);
  const mayError = leg === 'client' ? allowedClientErrors(opts['conformance-js']) : new Set();
  const harnessRc = opts['harness-rc'] === undefined ? 0 : Number(opts['harness-rc']);

  const checksByScenario = new Map();
  for (const f of findChecksFiles(dir)) {
    const name = scenarioOf(f, dir, leg);
    if (name === null) continue;
    let checks;
    try {
      checks = JSON.parse(readFileSync(f, 'utf8'));
    } catch (e) {
      checks = [{ id: 'checks-json-unreadable', status: 'FAILURE', errorMessage: `${f}: ${e.message}` }];
    }
    if (!Array.isArray(checks)) {
      checks = [{ id: 'checks-json-unreadable', status: 'FAILURE', errorMessage: `${f}: not an array` }];
    }
    checksByScenario.set(name, (checksByScenario.get(name) ?? []).concat(checks));
  }

  const totals = { SUCCESS: 0, FAILURE: 0, WARNING: 0, SKIPPED: 0, INFO: 0 };
  const rows = [];
  const problems = [];
  let passed = 0;
  let failed = 0;
  let expectedFail = 0;

  for (const scenario of expected) {
    const checks = checksByScenario.get(scenario);
    const listed = baseline.get(scenario);
    const whole = listed !== undefined && listed.size === 0;
    const reasons = [];
    let baselinedHits = 0;
    if (!checks) {
      reasons.push('no checks.json: the scenario did not run or the harness crashed');
    } else {
      for (const c of checks) totals[c.status] = (totals[c.status] ?? 0) + 1;
      for (const c of checks) {
        if (!BAD.has(c.status)) continue;
        if (whole || (listed && listed.has(c.id))) {
          baselinedHits++;
          continue;
        }
        reasons.push(`${c.status} ${c.id}: ${clip(c.errorMessage || c.description)}`);
      }
      for (const id of REQUIRED_SUCCESS[scenario] ?? []) {
        if (whole || (listed && listed.has(id))) continue;
        const mine = checks.filter((c) => c.id === id);
        if (mine.length === 0) reasons.push(`required check ${id} is missing`);
        else if (!mine.some((c) => c.status === 'SUCCESS') && !mine.some((c) => BAD.has(c.status)))
          reasons.push(`required check ${id} is ${mine.map((c) => c.status).join('/')}, want SUCCESS`);
      }
    }
    if (leg === 'client') {
      const rcs = exits.get(scenario);
      if (!rcs) {
        if (checks) reasons.push('client exit status not recorded (client never started?)');
      } else {
        for (const rc of rcs) {
          if (rc === 0) continue;
          if (mayError.has(scenario) && rc !== 124 && rc !== 137 && rc !== 143) continue;
          if (whole) {
            baselinedHits++;
            continue;
          }
          reasons.push(rc === 124 || rc === 137 || rc === 143 ? `client timed out or was killed (exit ${rc})` : `client exited ${rc}`);
        }
      }
    }
    if (listed) {
      // Stale entries: listed, but nothing failed. Per-check entries are stale when that
      // check now succeeds.
      if (whole && checks && baselinedHits === 0 && reasons.length === 0) {
        reasons.push('listed in expected-failures but passes now: remove it from the file');
      }
      if (!whole && checks) {
        for (const id of listed) {
          const mine = checks.filter((c) => c.id === id);
          if (mine.length > 0 && mine.every((c) => c.status === 'SUCCESS' || c.status === 'INFO'))
            reasons.push(`expected failure ${scenario}:${id} passes now: remove it from the file`);
        }
      }
    }
    let verdict;
    if (reasons.length > 0) {
      verdict = 'FAIL';
      failed++;
      problems.push({ scenario, reasons });
    } else if (whole) {
      verdict = 'EXPECTED-FAIL';
      expectedFail++;
    } else {
      verdict = 'PASS';
      passed++;
    }
    rows.push({ scenario, verdict, checks: checks ? checks.length : 0 });
  }

  // Scenarios that ran but were not expected (harness selection changed): report, and fail,
  // because our expectation list is then out of date.
  for (const name of checksByScenario.keys()) {
    if (!expected.includes(name)) {
      failed++;
      problems.push({ scenario: name, reasons: ['ran but is not in the expected scenario list'] });
      rows.push({ scenario: name, verdict: 'FAIL', checks: checksByScenario.get(name).length });
    }
  }
  const notes = [];
  for (const name of baseline.keys()) {
    if (!expected.includes(name)) notes.push(`note: ${name} is listed in expected-failures but is not part of this run`);
  }
  if (harnessRc !== 0) {
    problems.push({ scenario: '(harness)', reasons: [`conformance CLI exited ${harnessRc}`] });
  }

  const ok = failed === 0 && harnessRc === 0;
  console.log(`--- verdict ${label} (strict: FAILURE/WARNING anywhere, required checks, client exit status)`);
  const exp = rows.filter((r) => r.verdict === 'EXPECTED-FAIL').map((r) => r.scenario);
  if (exp.length > 0) console.log(`  ~ expected failures (${exp.length}): ${exp.join(', ')}`);
  for (const p of problems) {
    console.log(`  ✗ ${p.scenario}`);
    for (const r of p.reasons) console.log(`      - ${r}`);
  }
  for (const n of notes) console.log(`  ${n}`);
  const line =
    `${label}: ${ok ? 'PASS' : 'FAIL'}: scenarios ${passed} passed, ${failed} failed, ` +
    `${expectedFail} expected failures; checks ${totals.SUCCESS} success, ${totals.FAILURE} failure, ` +
    `${totals.WARNING} warning, ${totals.SKIPPED} skipped, ${totals.INFO} info` +
    (harnessRc !== 0 ? `; harness exit ${harnessRc}` : '');
  console.log(line);
  writeFileSync(
    join(dir, 'verdict.json'),
    JSON.stringify({ label, leg, ok, passed, failed, expectedFailures: expectedFail, totals, harnessRc, rows, problems }, null, 2),
  );
  writeFileSync(join(dir, 'verdict.txt'), `${line}\n`);
  process.exit(ok ? 0 : 1);
}

main();

// GraphQL-over-HTTP conformance audit (graphql-http's server audits) against a running server.
//
//   node audit.mjs http://127.0.0.1:PORT/graphql
//
// Prints one line per audit (ok / notice / warn / error, its id and name; for a failure the
// reason and the response's status, content-type and body), then `N passed, M failed`, where
// passed counts ok audits and failed counts warnings (SHOULD) and errors (MUST). Notices (a
// failed MAY) are printed and counted on the line before, but fail nothing. Exits 1 on any
// warning or error, or when an audit could not be run at all (server unreachable, timeout).
//
// Runs the same list as `auditServer({ url })` (which is `Promise.all(serverAudits(opts).map(a
// => a.fn()))`), one by one, so that a fatal error in one audit (a refused connection, a
// timeout) is reported against that audit instead of losing every result.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs http://HOST:PORT/graphql');
  process.exit(2);
}

const TIMEOUT_MS = Number(process.env.AUDIT_TIMEOUT_MS || 30000);
const BODY_CHARS = 500;

// Each request gets a timeout, so a hanging server fails the audit instead of the run.
const fetchFn = (input, init = {}) => fetch(input, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });

async function describe(res) {
  if (!res) return '';
  let body;
  try {
    body = await res.clone().text();
  } catch (e) {
    try {
      body = await res.text();
    } catch (e2) {
      body = `<body not readable: ${e2.message ?? e2}>`;
    }
  }
  if (body.length > BODY_CHARS) body = `${body.slice(0, BODY_CHARS)}... (${body.length} chars)`;
  return `    response: ${res.status} content-type: ${res.headers.get('content-type') ?? '<none>'}\n    body: ${body}`;
}

const audits = serverAudits({ url, fetchFn });
const results = await Promise.all(
  audits.map(async (a) => {
    try {
      return await a.fn();
    } catch (e) {
      return { id: a.id, name: a.name, status: 'error', reason: `could not run the audit: ${e?.cause?.message ?? e?.message ?? e}` };
    }
  }),
);

const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const r of results) {
  counts[r.status] = (counts[r.status] ?? 0) + 1;
  console.log(`${r.status.padEnd(6)} ${r.id} ${r.name}`);
  if (r.status !== 'ok') {
    console.log(`    reason: ${r.reason}`);
    const d = await describe(r.response);
    if (d) console.log(d);
  }
}
const failed = counts.warn + counts.error;
console.log(`audits: ${results.length} total, ${counts.ok} ok, ${counts.notice} notice, ${counts.warn} warn, ${counts.error} error`);
console.log(`${counts.ok} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);

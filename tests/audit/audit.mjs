// Audit a live GraphQL-over-HTTP endpoint with graphql-http's serverAudit.
// Usage: node audit.mjs http://127.0.0.1:PORT/graphql  -> prints JSON results, exit 1 on any error.
import { serverAudit } from 'graphql-http';

const url = process.argv[2];
const results = await serverAudit({ url, fetchFn: fetch });
const out = results.map((r) => ({ id: r.id, name: r.name, status: r.status, reason: r.reason ?? null }));
console.log(JSON.stringify(out));
process.exit(out.some((r) => r.status === 'error') ? 1 : 0);

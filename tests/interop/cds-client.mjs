// An independent CDS Hooks client built on @medplum/core (MedplumClient.getCdsServices,
// buildCdsRequest, MedplumClient.callCdsService): discovery, prefetch resolved by Medplum's code
// against a FHIR server, then the order-sign call. Prints the service's JSON answer to stdout;
// exits non-zero with a one-line message on stderr on any failure.
//
//   node --experimental-websocket cds-client.mjs --cds URL --fhir URL --token T --patient ID
//        --user Practitioner/x --orders FILE [--no-prefetch] [--service ID]
//        [--timeout-ms 30000] [--request-out FILE]
//
//   --cds      the CDS service base (http://host:port, or .../cds-services)
//   --fhir     the FHIR server base (http://host:port/fhir); read with `Authorization: Bearer T`
//              and sent to the service as fhirServer, with fhirAuthorization.access_token = T
//   --orders   JSON file: a list of draft ServiceRequests, or a Bundle of them
//   --no-prefetch  send no `prefetch` at all, so the service fetches the chart itself
//   --request-out  also write the request that was sent (access token replaced by "***")
//
// The service is called without an Authorization header (the tests run it with CDS_AUTH=off;
// client JWTs are tested elsewhere). The token is never printed.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const SERVICE_ID = 'spine-surgery-order-sign';

let step = 'arguments';
let token;
try {
  if (typeof globalThis.WebSocket === 'undefined') {
    // Without it the @medplum/core import dies with "WebSocket is not defined".
    throw new Error('@medplum 5.x needs the WebSocket global: run node --experimental-websocket (Node < 22)');
  }
  const { MedplumClient, buildCdsRequest } = await import('@medplum/core');

  const { values: args } = parseArgs({
    options: {
      cds: { type: 'string' },
      fhir: { type: 'string' },
      token: { type: 'string' },
      patient: { type: 'string' },
      user: { type: 'string' },
      orders: { type: 'string' },
      'no-prefetch': { type: 'boolean', default: false },
      service: { type: 'string', default: SERVICE_ID },
      'timeout-ms': { type: 'string', default: '30000' },
      'request-out': { type: 'string' },
    },
    strict: true,
  });
  token = args.token;
  for (const name of ['cds', 'fhir', 'token', 'patient', 'user', 'orders']) {
    if (!args[name]) {
      throw new Error(`--${name} is required`);
    }
  }
  const [userType, userId, ...rest] = args.user.split('/');
  if (!['Practitioner', 'PractitionerRole', 'Patient', 'RelatedPerson'].includes(userType) || !userId || rest.length) {
    throw new Error(`--user must be Practitioner/<id> (or PractitionerRole, Patient, RelatedPerson), not ${args.user}`);
  }
  const timeoutMs = Number.parseInt(args['timeout-ms'], 10);
  // Every HTTP call the library makes goes through this fetch, with a deadline.
  const fetchWithTimeout = (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });

  step = 'reading --orders';
  const orders = readOrders(args.orders);

  // Two clients: one for the EHR's FHIR server (with the bearer token), one for the CDS service
  // (no credentials). extendedMode: false, so no Medplum-specific X-Medplum header is sent.
  const fhirBase = new URL(args.fhir);
  const fhir = new MedplumClient({
    baseUrl: fhirBase.origin + '/',
    fhirUrlPath: fhirBase.pathname.replace(/^\/+|\/+$/g, ''),
    fetch: fetchWithTimeout,
    extendedMode: false,
    defaultHeaders: { Authorization: `Bearer ${args.token}` },
  });
  const cdsUrl = new URL(args.cds);
  const cdsPath = cdsUrl.pathname.replace(/\/+$/, '');
  const cds = new MedplumClient({
    baseUrl: cdsUrl.origin + (cdsPath.endsWith('/cds-services') ? cdsPath.slice(0, -'/cds-services'.length) : cdsPath) + '/',
    fetch: fetchWithTimeout,
    extendedMode: false,
  });

  step = `discovery (GET ${cds.getCdsServicesUrl()})`;
  const discovery = await cds.getCdsServices();
  const service = (discovery?.services ?? []).find((s) => s.id === args.service);
  if (!service) {
    throw new Error(`no service ${args.service} in discovery (found: ${(discovery?.services ?? []).map((s) => s.id).join(', ') || 'none'})`);
  }
  if (service.hook !== 'order-sign') {
    throw new Error(`service ${service.id} is for hook ${service.hook}, not order-sign`);
  }

  step = 'building the request (prefetch resolved against the FHIR server)';
  const user = { resourceType: userType, id: userId };
  const context = {
    userId: args.user,
    patientId: args.patient,
    draftOrders: { resourceType: 'Bundle', type: 'collection', entry: orders.map((resource) => ({ resource })) },
  };
  // With --no-prefetch the templates are not resolved at all: the service must fetch everything.
  const built = await buildCdsRequest(fhir, user, args['no-prefetch'] ? { ...service, prefetch: undefined } : service, context);
  const request = {
    ...built,
    fhirServer: args.fhir.replace(/\/+$/, ''),
    fhirAuthorization: {
      access_token: args.token,
      token_type: 'Bearer',
      expires_in: 30,
      scope: 'patient/*.read',
      subject: 'spine-cds-interop',
    },
  };
  if (args['no-prefetch']) {
    delete request.prefetch;
  }
  if (args['request-out']) {
    const shown = { ...request, fhirAuthorization: { ...request.fhirAuthorization, access_token: '***' } };
    writeFileSync(args['request-out'], JSON.stringify(shown, null, 2));
  }

  step = `order-sign call (POST ${cds.getCdsServicesUrl()}/${service.id})`;
  const answer = await cds.callCdsService(service.id, request);
  if (!answer || !Array.isArray(answer.cards)) {
    throw new Error(`the answer has no cards list: ${JSON.stringify(answer).slice(0, 300)}`);
  }
  process.stdout.write(JSON.stringify(answer) + '\n', () => process.exit(0));
} catch (err) {
  // A library message could echo a header: never let the token through.
  let message = err?.message ?? String(err);
  if (token) {
    message = message.split(token).join('***');
  }
  process.stderr.write(`cds-client: ${step} failed: ${message}\n`);
  process.exit(1);
}

function readOrders(path) {
  const data = JSON.parse(readFileSync(path, 'utf8'));
  const resources = Array.isArray(data)
    ? data
    : data?.resourceType === 'Bundle'
      ? (data.entry ?? []).map((e) => e?.resource)
      : [data];
  if (!resources.length || resources.some((r) => r?.resourceType !== 'ServiceRequest')) {
    throw new Error(`${path} must hold draft ServiceRequests (a list or a Bundle)`);
  }
  return resources;
}

/**
 * The Helm chart (deploy/helm/talos-image-factory), checked offline with the real helm binary: lint, rendering of
 * several values sets, every object against the Kubernetes schemas (unknown fields rejected), and the chart's
 * security and routing promises. test/integration/helm-runs.test.ts runs what it renders.
 */
import {
  checkShape, CHART_DIR, CRD_SHAPES, helm, helmMissingReason, isCustomResource, K8sObject, objectsOf, renderChart, unknownFields, validateWithModels,
} from '../support/helm';
import { describeIf } from '../support/skip';
import { BlockList, isIPv6 } from 'node:net';
import { EnvReader, parseDuration, readBuildRetention, readNotify } from '@factory/config';
import { isPrivateAddress } from '../../services/gateway/src/notify/ssrf';

interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }
interface Container {
  name: string;
  command?: string[];
  env?: EnvVar[];
  securityContext?: { runAsNonRoot?: boolean; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } };
  readinessProbe?: { httpGet?: { path: string; port: number | string }; exec?: unknown };
  livenessProbe?: { httpGet?: { path: string; port: number | string }; tcpSocket?: unknown };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string }[];
  ports?: { name: string; containerPort: number }[];
}
interface PodSpec {
  automountServiceAccountToken?: boolean;
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] }; emptyDir?: { sizeLimit?: string } }[];
}
type Workload = K8sObject & { spec: { replicas?: number; strategy?: { type: string }; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } } };

/** A global webhook as an operator puts it in webhooks.inline (the secret is the receiver's). */
const INLINE_HOOKS = [
  { url: 'https://ci.example.com:8443/hooks/factory', secret: 'receiver-secret-1', events: ['build.succeeded', 'build.failed'], schematic: '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba' },
  { url: 'https://hooks.example.org/talos', secret: 'receiver-secret-2', events: ['version.available'] },
];

/** The values sets the issue names, plus the PXE host (each also rendered by helm lint --strict). */
const VALUES_SETS: Record<string, Record<string, unknown>> = {
  defaults: {},
  'in-chart Redis, PXE host, S3 keys, monitoring': {
    'redis.internal.enabled': true,
    pxeUrl: 'http://pxe.factory.example.com/',
    s3: { bucket: 'factory', endpoint: 'https://s3.example.com', existingSecret: 'factory-s3', region: 'eu-west-1' },
    serviceMonitor: { enabled: true },
    prometheusRule: { enabled: true },
  },
  'external Redis with a password Secret, existing signing key, Secure Boot keys, workload identity': {
    'redis.internal.enabled': false,
    'redis.url': 'rediss://redis.example.com:6380/0',
    'redis.existingSecret': 'factory-redis',
    'signing.existingSecret': 'factory-signing',
    'signing.secureBoot.existingSecret': 'factory-secureboot',
    'serviceAccount.annotations': { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/factory' },
  },
  'external Redis through Sentinel': {
    'redis.internal.enabled': false,
    'redis.sentinel': { enabled: true, masterName: 'factory', hosts: ['sentinel-0.redis:26379', 'sentinel-1.redis:26379'] },
  },
  'Gateway API instead of Ingress': {
    'ingress.enabled': false,
    gatewayApi: { enabled: true, parentRefs: [{ name: 'public', namespace: 'gateway-system' }] },
    pxeUrl: 'http://pxe.factory.example.com/',
  },
  'autoscaling: HPA': { 'buildWorker.autoscaling.hpa.enabled': true },
  'autoscaling: KEDA on the build queue': { 'buildWorker.autoscaling.keda.enabled': true, serviceMonitor: { enabled: true } },
  'webhooks from an existing Secret, build API settings': {
    webhooks: { existingSecret: 'factory-webhooks', existingSecretKey: 'hooks.json', allowPrivateTargets: true, timeout: '5s', retryDelay: '1.5m' },
    builds: { retention: '7d', maxPerRequest: 8, maxStreams: 200 },
  },
  'webhooks inline': { 'webhooks.inline': INLINE_HOOKS },
};

const missing = helmMissingReason();

describeIf(!missing, missing ?? '')('Helm chart', () => {
  const rendered = new Map<string, K8sObject[]>();
  beforeAll(() => {
    for (const [name, values] of Object.entries(VALUES_SETS)) rendered.set(name, renderChart(values));
  }, 120_000);

  test('helm lint --strict passes for every values set', () => {
    for (const [name, values] of Object.entries(VALUES_SETS)) {
      const args = ['lint', '--strict', CHART_DIR];
      for (const [k, v] of Object.entries(values)) args.push('--set-json', `${k}=${JSON.stringify(v)}`);
      const r = helm(args);
      expect({ name, code: r.code, out: r.code === 0 ? '' : r.stdout + r.stderr }).toEqual({ name, code: 0, out: '' });
    }
  }, 120_000);

  test('values.schema.json rejects unknown and malformed values', () => {
    expect(helm(['template', 'x', CHART_DIR, '--set', 'replicaz=3']).stderr).toMatch(/additional properties 'replicaz' not allowed/);
    expect(helm(['template', 'x', CHART_DIR, '--set', 'externalUrl=factory.example.com']).stderr).toMatch(/externalUrl/);
    expect(helm(['template', 'x', CHART_DIR, '--set', 'buildWorker.concurrency=0']).code).not.toBe(0);
    expect(helm(['template', 'x', CHART_DIR, '--set', 'redis.internal.enabled=false']).stderr).toMatch(/redis.url is required/);
    // build API and webhook settings: durations as the services parse them, their integer ranges, the hooks' shape
    const refused = (setJson: Record<string, unknown>) => {
      const args = ['template', 'x', CHART_DIR];
      for (const [k, v] of Object.entries(setJson)) args.push('--set-json', `${k}=${JSON.stringify(v)}`);
      const r = helm(args);
      return r.code === 0 ? 'accepted' : r.stderr;
    };
    expect(refused({ 'webhooks.timeout': '10sec' })).toMatch(/at '\/webhooks\/timeout': '10sec' does not match pattern/);
    expect(refused({ 'builds.retention': '1w' })).toMatch(/\/builds\/retention/);
    expect(refused({ 'builds.retention': 3600 })).toMatch(/\/builds\/retention': got number, want string/);
    expect(refused({ 'builds.maxPerRequest': 0 })).toMatch(/\/builds\/maxPerRequest': minimum: got 0, want 1/);
    expect(refused({ 'builds.maxStreams': 100_001 })).toMatch(/\/builds\/maxStreams': maximum/);
    expect(refused({ 'webhooks.secret': 'x' })).toMatch(/additional properties 'secret' not allowed/);
    expect(refused({ 'webhooks.existingSecretKey': 'a/b' })).toMatch(/existingSecretKey/);
    // both problems named, in whichever order helm lists them (its order varies between runs)
    const badHook = refused({ 'webhooks.inline': [{ url: 'https://u:p@ci.example.com/', secret: 's', events: ['build.started'] }] });
    expect(badHook).toMatch(/inline\/0\/url': .* does not match pattern/);
    expect(badHook).toMatch(/inline\/0\/events\/0': value must be one of 'build.succeeded', 'build.failed', 'version.available'/);
    expect(refused({ 'webhooks.inline': [{ url: 'https://ci.example.com/', events: ['build.failed'] }] })).toMatch(/inline\/0': missing property 'secret'/);
    expect(refused({ 'webhooks.inline': [{ ...INLINE_HOOKS[1], schematic: 'abc' }] })).toMatch(/inline\/0\/schematic/);
    expect(refused({ 'webhooks.inline': [{ ...INLINE_HOOKS[1], events: [] }] })).toMatch(/inline\/0\/events': minItems/);
    // what the schema cannot say: one source of global hooks, and no `config` entry the chart's own setting would hide
    expect(refused({ 'webhooks.inline': INLINE_HOOKS, 'webhooks.existingSecret': 'factory-webhooks' })).toMatch(/set one of webhooks.existingSecret and webhooks.inline/);
    expect(refused({ 'config.FACTORY_WEBHOOKS': '[]' })).toMatch(/config.FACTORY_WEBHOOKS: set it with webhooks.existingSecret or webhooks.inline instead/);
    expect(refused({ 'config.FACTORY_BUILD_RETENTION': '7d' })).toMatch(/config.FACTORY_BUILD_RETENTION: set it with builds.retention instead/);
    // key files: a path in `config` would reach every Deployment, and the file none
    expect(refused({ 'config.FACTORY_SECUREBOOT_PK_KEY_FILE': '/keys/pk.pem' })).toMatch(/config.FACTORY_SECUREBOOT_PK_KEY_FILE: set it with signing.secureBoot.platformKey instead/);
    expect(refused({ 'config.FACTORY_SECUREBOOT_PCR_KEY_FILE': '/keys/pcr.pem' })).toMatch(/config.FACTORY_SECUREBOOT_PCR_KEY_FILE: set it with signing.secureBoot.existingSecret instead/);
    expect(refused({ 'config.FACTORY_COSIGN_KEY_FILE': '/keys/cosign.key' })).toMatch(/config.FACTORY_COSIGN_KEY_FILE: set it with signing.existingSecret instead/);
    expect(refused({ 'signing.secureBoot.keyExchangeKey': true })).toMatch(/platformKey and keyExchangeKey name keys in signing.secureBoot.existingSecret; set it too/);
    expect(refused({ 'signing.secureBoot.platformKey': 'yes' })).toMatch(/\/signing\/secureBoot\/platformKey': got string, want boolean/);
    // the grammar the schema gives durations is the services' own
    expect(refused({ 'builds.retention': '1.5h', 'webhooks.timeout': '2500ms', 'webhooks.retryDelay': '90', 's3.presignTtl': '2d' })).toBe('accepted');
    expect(['1.5h', '2500ms', '90', '2d', '10sec', '1w'].map((d) => parseDuration(d) !== undefined)).toEqual([true, true, true, true, false, false]);
  }, 60_000);

  test('every rendered object is valid against the Kubernetes schemas, with no field the schema does not know', () => {
    for (const [name, objects] of rendered) {
      const builtIn = objects.filter((o) => !isCustomResource(o));
      const crs = objects.filter(isCustomResource);
      const problems = [
        ...validateWithModels(builtIn),
        ...unknownFields(builtIn),
        ...crs.flatMap((o) => checkShape(o, CRD_SHAPES[`${o.apiVersion} ${o.kind}`], `${o.kind}/${o.metadata.name}`)),
      ];
      expect({ name, problems }).toEqual({ name, problems: [] });
    }
    // the checker itself: a misspelt field and a wrong type are caught
    const deployment = objectsOf<Workload>(rendered.get('defaults')!, 'Deployment')[0];
    const broken = JSON.parse(JSON.stringify(deployment));
    broken.spec.template.spec.containers[0].securityContex = {};
    broken.spec.replicas = 'two';
    expect(unknownFields([broken])).toEqual([`Deployment/${deployment.metadata.name}.spec.template.spec.containers[0].securityContex: unknown field`]);
    expect(validateWithModels([broken]).join('\n')).toMatch(/replicas/);
    expect(checkShape({ apiVersion: 'x', kind: 'y', metadata: { name: 'n' }, spec: { selector: {}, endpoints: [], bogus: 1 } }, CRD_SHAPES['monitoring.coreos.com/v1 ServiceMonitor'], 'SM')).toEqual(['SM.spec.bogus: unknown field']);
  }, 120_000);

  test('one Deployment per service; signing runs once, with Recreate; the values sets render what they enable', () => {
    const defaults = rendered.get('defaults')!;
    const deployments = objectsOf<Workload>(defaults, 'Deployment');
    expect(deployments.map((d) => d.metadata.labels!['app.kubernetes.io/component']).sort()).toEqual(['build-worker', 'gateway', 'registry-proxy', 'schematic-store', 'signing']);
    for (const d of deployments) {
      const component = d.metadata.labels!['app.kubernetes.io/component'];
      expect(d.spec.template.spec.containers[0].command).toEqual(['node', `services/${component}/dist/main.js`]);
    }
    const signing = deployments.find((d) => d.metadata.name.endsWith('-signing'))!;
    expect([signing.spec.replicas, signing.spec.strategy?.type]).toEqual([1, 'Recreate']);
    expect(objectsOf(defaults, 'StatefulSet')).toHaveLength(1);
    expect(objectsOf(rendered.get('external Redis with a password Secret, existing signing key, Secure Boot keys, workload identity')!, 'StatefulSet')).toHaveLength(0);
    expect(objectsOf(rendered.get('external Redis with a password Secret, existing signing key, Secure Boot keys, workload identity')!, 'Job')).toHaveLength(0);
    expect(objectsOf(rendered.get('Gateway API instead of Ingress')!, 'Ingress')).toHaveLength(0);
    expect(objectsOf(rendered.get('autoscaling: HPA')!, 'HorizontalPodAutoscaler')).toHaveLength(1);
    const keda = rendered.get('autoscaling: KEDA on the build queue')!;
    const scaled = objectsOf<{ spec: { triggers: { metadata: { query: string } }[] } }>(keda, 'ScaledObject');
    expect(scaled).toHaveLength(1);
    expect(scaled[0].spec.triggers[0].metadata.query).toMatch(/factory_queue_jobs\{.*queue="build",state=~"wait\|prioritized/);
    // an autoscaled build-worker has no fixed replica count for helm upgrades to fight over
    expect(objectsOf<Workload>(keda, 'Deployment').find((d) => d.metadata.name.endsWith('-build-worker'))!.spec.replicas).toBeUndefined();
    const rules = objectsOf<{ spec: { groups: { rules: { alert: string }[] }[] } }>(rendered.get('in-chart Redis, PXE host, S3 keys, monitoring')!, 'PrometheusRule');
    expect(rules[0].spec.groups[0].rules.map((r) => r.alert)).toEqual(['ImageFactoryBuildQueueBacklog', 'ImageFactoryBuildFailures', 'ImageFactoryNoReadyBuildWorkers', 'ImageFactorySigningDown']);
  });

  test('only the signing pod mounts the signing key Secret (and the Secure Boot key Secret when given)', () => {
    for (const [name, objects] of rendered) {
      const keySecret = name.includes('existing signing key') ? 'factory-signing' : 'factory-talos-image-factory-signing-key';
      const keySecrets = name.includes('Secure Boot keys') ? [keySecret, 'factory-secureboot'] : [keySecret];
      for (const secret of keySecrets) {
        const mounting = [...objectsOf<Workload>(objects, 'Deployment'), ...objectsOf<Workload>(objects, 'StatefulSet'), ...objectsOf<Workload>(objects, 'Job')]
          .filter((w) => (w.spec.template.spec.volumes ?? []).some((v) => v.secret?.secretName === secret))
          .map((w) => w.metadata.name);
        expect({ name, secret, mounting }).toEqual({ name, secret, mounting: ['factory-talos-image-factory-signing'] });
      }
      // and no other Secret is mounted as a file anywhere; other Secrets reach pods only as single env values
      const secretVolumes = objectsOf<Workload>(objects, 'Deployment').flatMap((w) => (w.spec.template.spec.volumes ?? []).filter((v) => v.secret).map((v) => v.secret!.secretName));
      expect(secretVolumes).toEqual(keySecrets);
    }
  });

  test('Secure Boot enrolment keys: PK and KEK pairs from the Secure Boot Secret reach only the signing pod, as the files its settings name', () => {
    const signingOf = (objects: K8sObject[]) => objectsOf<Workload>(objects, 'Deployment').find((d) => d.metadata.name.endsWith('-signing'))!.spec.template.spec;
    const keyFiles = (objects: K8sObject[]) => {
      const pod = signingOf(objects);
      const env = Object.fromEntries((pod.containers[0].env ?? []).filter((e) => e.name.startsWith('FACTORY_SECUREBOOT_')).map((e) => [e.name, e.value]));
      const mount = pod.containers[0].volumeMounts!.find((m) => m.name === 'secureboot-keys')!;
      const items = pod.volumes!.find((v) => v.name === 'secureboot-keys')!.secret!.items!.map((i) => `${mount.mountPath}/${i.path}`);
      return { env, items };
    };
    const withoutOwn = keyFiles(rendered.get('external Redis with a password Secret, existing signing key, Secure Boot keys, workload identity')!);
    expect(Object.keys(withoutOwn.env).sort()).toEqual(['FACTORY_SECUREBOOT_PCR_KEY_FILE', 'FACTORY_SECUREBOOT_SIGNING_CERT_FILE', 'FACTORY_SECUREBOOT_SIGNING_KEY_FILE']);
    const both = renderChart({ 'signing.secureBoot': { existingSecret: 'factory-secureboot', platformKey: true, keyExchangeKey: true } });
    const { env, items } = keyFiles(both);
    expect(env).toEqual({
      FACTORY_SECUREBOOT_SIGNING_KEY_FILE: '/etc/factory/secureboot/uki-signing-key.pem',
      FACTORY_SECUREBOOT_SIGNING_CERT_FILE: '/etc/factory/secureboot/uki-signing-cert.pem',
      FACTORY_SECUREBOOT_PCR_KEY_FILE: '/etc/factory/secureboot/pcr-signing-key.pem',
      FACTORY_SECUREBOOT_PK_KEY_FILE: '/etc/factory/secureboot/pk-key.pem',
      FACTORY_SECUREBOOT_PK_CERT_FILE: '/etc/factory/secureboot/pk-cert.pem',
      FACTORY_SECUREBOOT_KEK_KEY_FILE: '/etc/factory/secureboot/kek-key.pem',
      FACTORY_SECUREBOOT_KEK_CERT_FILE: '/etc/factory/secureboot/kek-cert.pem',
    });
    // every file a setting names is one the Secret volume provides, and nothing else is mounted from it
    expect(items.sort()).toEqual(Object.values(env).sort());
    const pkOnly = keyFiles(renderChart({ 'signing.secureBoot': { existingSecret: 'factory-secureboot', platformKey: true } }));
    expect(Object.keys(pkOnly.env).filter((n) => /_(PK|KEK)_/.test(n)).sort()).toEqual(['FACTORY_SECUREBOOT_PK_CERT_FILE', 'FACTORY_SECUREBOOT_PK_KEY_FILE']);
    expect(pkOnly.items.sort()).toEqual(Object.values(pkOnly.env).sort());
    // no other workload names a Secure Boot key file
    for (const w of objectsOf<Workload>(both, 'Deployment').filter((d) => !d.metadata.name.endsWith('-signing'))) {
      expect({ w: w.metadata.name, env: (w.spec.template.spec.containers[0].env ?? []).filter((e) => e.name.startsWith('FACTORY_SECUREBOOT_')) }).toEqual({ w: w.metadata.name, env: [] });
    }
  });

  test('every container runs non-root with a read-only root filesystem; only the key-generating Job has an API token', () => {
    for (const [name, objects] of rendered) {
      for (const w of [...objectsOf<Workload>(objects, 'Deployment'), ...objectsOf<Workload>(objects, 'StatefulSet'), ...objectsOf<Workload>(objects, 'Job')]) {
        const pod = w.spec.template.spec;
        expect({ name, w: w.metadata.name, pod: [pod.securityContext?.runAsNonRoot, pod.securityContext?.seccompProfile?.type] }).toEqual({ name, w: w.metadata.name, pod: [true, 'RuntimeDefault'] });
        expect({ name, w: w.metadata.name, token: pod.automountServiceAccountToken }).toEqual({ name, w: w.metadata.name, token: w.kind === 'Job' });
        for (const c of pod.containers) {
          const sc = c.securityContext ?? {};
          expect({ name, c: c.name, sc: [sc.runAsNonRoot, sc.readOnlyRootFilesystem, sc.allowPrivilegeEscalation, sc.capabilities?.drop] }).toEqual({ name, c: c.name, sc: [true, true, false, ['ALL']] });
        }
      }
      for (const sa of objectsOf<{ automountServiceAccountToken?: boolean }>(objects, 'ServiceAccount')) {
        if (!sa.metadata.name.endsWith('-keygen')) expect(sa.automountServiceAccountToken).toBe(false);
      }
    }
  });

  test('every long-running workload has liveness and readiness probes and resources; build scratch is sized', () => {
    for (const [name, objects] of rendered) {
      for (const w of [...objectsOf<Workload>(objects, 'Deployment'), ...objectsOf<Workload>(objects, 'StatefulSet')]) {
        for (const c of w.spec.template.spec.containers) {
          const where = `${name}: ${w.metadata.name}/${c.name}`;
          expect([where, Boolean(c.livenessProbe), Boolean(c.readinessProbe), Boolean(c.resources?.requests?.memory), Boolean(c.resources?.limits?.memory)]).toEqual([where, true, true, true, true]);
          if (w.kind === 'Deployment') {
            expect([where, c.livenessProbe?.httpGet?.path, c.readinessProbe?.httpGet?.path]).toEqual([where, '/healthz', '/readyz']);
            // the HTTP services are probed on their HTTP port, the others on METRICS_PORT
            const expected = { gateway: 8080, 'registry-proxy': 8081 }[c.name] ?? 9090;
            expect([where, c.readinessProbe?.httpGet?.port]).toEqual([where, expected]);
          }
        }
      }
      const worker = objectsOf<Workload>(objects, 'Deployment').find((d) => d.metadata.name.endsWith('-build-worker'))!;
      expect(worker.spec.template.spec.volumes!.find((v) => v.name === 'tmp')!.emptyDir!.sizeLimit).toBe('20Gi');
    }
  });

  test('/v2 routes to the registry-proxy and the rest to the gateway (Ingress and HTTPRoute); the PXE host goes to the gateway', () => {
    type IngressSpec = { spec: { rules: { host: string; http: { paths: { path: string; backend: { service: { name: string } } }[] } }[] } };
    const ingresses = objectsOf<IngressSpec>(rendered.get('in-chart Redis, PXE host, S3 keys, monitoring')!, 'Ingress');
    const api = ingresses.find((i) => i.spec.rules[0].host === 'factory.example.com')!;
    expect(api.spec.rules[0].http.paths.map((p) => [p.path, p.backend.service.name])).toEqual([
      ['/v2', 'factory-talos-image-factory-registry-proxy'],
      ['/', 'factory-talos-image-factory-gateway'],
    ]);
    const pxe = ingresses.find((i) => i.spec.rules[0].host === 'pxe.factory.example.com')!;
    expect(pxe.spec.rules[0].http.paths.map((p) => [p.path, p.backend.service.name])).toEqual([['/', 'factory-talos-image-factory-gateway']]);
    expect(pxe.metadata.annotations?.['nginx.ingress.kubernetes.io/ssl-redirect']).toBe('false');

    type RouteSpec = { spec: { hostnames: string[]; rules: { matches: { path: { value: string } }[]; backendRefs: { name: string; port: number }[] }[] } };
    const routes = objectsOf<RouteSpec>(rendered.get('Gateway API instead of Ingress')!, 'HTTPRoute');
    const apiRoute = routes.find((r) => r.spec.hostnames[0] === 'factory.example.com')!;
    expect(apiRoute.spec.rules.map((r) => [r.matches[0].path.value, r.backendRefs[0].name, r.backendRefs[0].port])).toEqual([
      ['/v2', 'factory-talos-image-factory-registry-proxy', 8081],
      ['/', 'factory-talos-image-factory-gateway', 80],
    ]);
    expect(routes.find((r) => r.spec.hostnames[0] === 'pxe.factory.example.com')!.spec.rules[0].backendRefs[0].name).toBe('factory-talos-image-factory-gateway');
  });

  test('network policies: only the gateway and the registry-proxy take client traffic; signing takes none', () => {
    type Policy = { spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: { ports?: { port: string }[]; from?: unknown[] }[] } };
    const byComponent = (objects: K8sObject[]) =>
      new Map(objectsOf<Policy>(objects, 'NetworkPolicy').map((p) => [p.spec.podSelector.matchLabels['app.kubernetes.io/component'], p]));
    const plain = byComponent(rendered.get('defaults')!);
    for (const [component, policy] of plain) {
      expect([component, policy.spec.policyTypes]).toEqual([component, ['Ingress', 'Egress']]);
      const open = policy.spec.ingress.length > 0;
      expect([component, open]).toEqual([component, ['gateway', 'registry-proxy', 'redis'].includes(component)]);
    }
    // with monitoring on, signing admits the metrics scrape and nothing else
    const monitored = byComponent(rendered.get('in-chart Redis, PXE host, S3 keys, monitoring')!);
    expect(monitored.get('signing')!.spec.ingress.map((r) => r.ports?.map((p) => p.port))).toEqual([['metrics']]);
  });

  /** Each Deployment's env entries by component: name → value, or `secret:<name>/<key>` for a secretKeyRef. */
  const envByComponent = (objects: K8sObject[]) =>
    Object.fromEntries(
      objectsOf<Workload>(objects, 'Deployment').map((d) => [
        d.metadata.labels!['app.kubernetes.io/component'],
        Object.fromEntries((d.spec.template.spec.containers[0].env ?? []).map((e) => [e.name, e.value ?? `secret:${e.valueFrom!.secretKeyRef!.name}/${e.valueFrom!.secretKeyRef!.key}`])),
      ]),
    ) as Record<string, Record<string, string>>;
  /** The gateway's build API and webhook env: name, its value with the defaults, with 'webhooks from an existing Secret…' */
  const GATEWAY_SETTINGS: [name: string, byDefault: string, configured: string][] = [
    ['FACTORY_BUILD_RETENTION', '24h', '7d'],
    ['FACTORY_MAX_BUILDS_PER_REQUEST', '32', '8'],
    ['FACTORY_MAX_BUILD_STREAMS', '1000', '200'],
    ['FACTORY_WEBHOOK_ALLOW_PRIVATE', 'false', 'true'],
    ['FACTORY_WEBHOOK_TIMEOUT', '10s', '5s'],
    ['FACTORY_WEBHOOK_RETRY_DELAY', '30s', '1.5m'],
  ];
  const BUILD_AND_WEBHOOK_ENV = [...GATEWAY_SETTINGS.map(([name]) => name), 'FACTORY_WEBHOOKS'];
  /** The issue-14 settings a component's env carries. */
  const settingsOf = (env: Record<string, string>) => Object.fromEntries(Object.entries(env).filter(([k]) => BUILD_AND_WEBHOOK_ENV.includes(k)));

  test('build API and webhook settings reach only the services that read them, with the services\' own defaults', () => {
    const defaults = envByComponent(rendered.get('defaults')!);
    expect(settingsOf(defaults.gateway)).toEqual(Object.fromEntries(GATEWAY_SETTINGS.map(([name, byDefault]) => [name, byDefault])));
    // the retention is also written by the build-worker (it records running, stages, done)
    expect(settingsOf(defaults['build-worker'])).toEqual({ FACTORY_BUILD_RETENTION: '24h' });
    for (const component of ['registry-proxy', 'schematic-store', 'signing']) expect([component, settingsOf(defaults[component])]).toEqual([component, {}]);
    // the chart's defaults are the services' own (for those libs/config holds; the two limits are the README's)
    const serviceDefaults = readNotify(new EnvReader({}));
    const chartDefaults = readNotify(new EnvReader(defaults.gateway));
    expect(chartDefaults).toEqual(serviceDefaults);
    expect(readBuildRetention(new EnvReader(defaults.gateway))).toBe(readBuildRetention(new EnvReader({})));
    // nothing of it in the ConfigMap every pod reads
    const configMap = objectsOf<{ data: Record<string, string> }>(rendered.get('defaults')!, 'ConfigMap').find((c) => c.metadata.name.endsWith('-env'))!;
    expect(Object.keys(configMap.data).filter((k) => BUILD_AND_WEBHOOK_ENV.includes(k))).toEqual([]);

    const configured = envByComponent(rendered.get('webhooks from an existing Secret, build API settings')!);
    expect(settingsOf(configured.gateway)).toEqual({
      ...Object.fromEntries(GATEWAY_SETTINGS.map(([name, , value]) => [name, value])),
      FACTORY_WEBHOOKS: 'secret:factory-webhooks/hooks.json',
    });
    expect(settingsOf(configured['build-worker'])).toEqual({ FACTORY_BUILD_RETENTION: '7d' });
    // and the gateway accepts them as set (the Secret's content is its to check at start)
    const env = new EnvReader({ ...configured.gateway, FACTORY_WEBHOOKS: undefined });
    expect([readBuildRetention(env), readNotify(env).retryBaseDelayMs, readNotify(env).deliveryTimeoutMs, readNotify(env).allowPrivateTargets]).toEqual([7 * 86_400_000, 90_000, 5000, true]);
  });

  test('global webhooks carry secrets: the gateway alone reads them, by secretKeyRef, from the operator\'s Secret or the chart\'s', () => {
    for (const [name, objects] of rendered) {
      const secretName = name === 'webhooks inline' ? 'factory-talos-image-factory-webhooks' : name.startsWith('webhooks from') ? 'factory-webhooks' : undefined;
      const env = envByComponent(objects);
      const reading = Object.keys(env).filter((component) => 'FACTORY_WEBHOOKS' in env[component]);
      expect({ name, reading }).toEqual({ name, reading: secretName ? ['gateway'] : [] });
      if (!secretName) continue;
      // no other workload names the Secret at all (not as env, volume or projection)
      const naming = [...objectsOf<Workload>(objects, 'Deployment'), ...objectsOf<Workload>(objects, 'StatefulSet'), ...objectsOf<Workload>(objects, 'Job')]
        .filter((w) => JSON.stringify(w.spec).includes(`"${secretName}"`))
        .map((w) => w.metadata.name);
      expect({ name, naming }).toEqual({ name, naming: ['factory-talos-image-factory-gateway'] });
    }
    // webhooks.inline: rendered into the chart's Secret as the array the gateway parses; a change rolls the gateways only
    const inline = rendered.get('webhooks inline')!;
    const secret = objectsOf<{ type: string; data: Record<string, string> }>(inline, 'Secret').find((o) => o.metadata.name === 'factory-talos-image-factory-webhooks')!;
    expect([secret.type, Object.keys(secret.data)]).toEqual(['Opaque', ['webhooks.json']]);
    const json = Buffer.from(secret.data['webhooks.json'], 'base64').toString();
    expect(JSON.parse(json)).toEqual(INLINE_HOOKS);
    const env = new EnvReader({ FACTORY_WEBHOOKS: json });
    expect(readNotify(env).globalWebhooks).toEqual(INLINE_HOOKS);
    expect(() => env.done()).not.toThrow();
    const rolled = objectsOf<Workload>(inline, 'Deployment').filter((d) => d.spec.template.metadata.annotations?.['checksum/webhooks']).map((d) => d.metadata.name);
    expect(rolled).toEqual(['factory-talos-image-factory-gateway']);
    // none is rendered without inline hooks
    expect(objectsOf(rendered.get('webhooks from an existing Secret, build API settings')!, 'Secret').map((o) => o.metadata.name)).toEqual(['factory-talos-image-factory-redis']);
  });

  test('network policies: the gateway, which delivers webhooks, may reach public addresses on the receivers\' ports; no other pod gains egress', () => {
    type Peer = { ipBlock?: { cidr: string; except?: string[] } };
    type Rule = { to?: Peer[]; ports?: { port: number | string; protocol: string }[] };
    type Policy = { spec: { podSelector: { matchLabels: Record<string, string> }; egress: Rule[] } };
    /** the egress rules that name ranges with exceptions: the webhook receivers' rule */
    const webhookRules = (objects: K8sObject[]) =>
      new Map(objectsOf<Policy>(objects, 'NetworkPolicy').map((p) => [p.spec.podSelector.matchLabels['app.kubernetes.io/component'], p.spec.egress.filter((r) => (r.to ?? []).some((t) => t.ipBlock?.except))]));
    const defaults = webhookRules(rendered.get('defaults')!);
    for (const [component, rules] of defaults) expect([component, rules.length]).toEqual([component, component === 'gateway' ? 1 : 0]);
    const [rule] = defaults.get('gateway')!;
    expect(rule.ports).toEqual([{ port: 443, protocol: 'TCP' }, { port: 80, protocol: 'TCP' }]);
    expect(rule.to!.map((t) => t.ipBlock!.cidr)).toEqual(['0.0.0.0/0', '::/0']);
    // the exceptions are addresses the SSRF guard refuses anyway, and they leave the public internet reachable
    const excepted = new BlockList();
    for (const cidr of rule.to!.flatMap((t) => t.ipBlock!.except!)) {
      const [net, bits] = cidr.split('/');
      expect([cidr, isPrivateAddress(net)]).toEqual([cidr, true]);
      excepted.addSubnet(net, Number(bits), isIPv6(net) ? 'ipv6' : 'ipv4');
    }
    const inExcept = (a: string) => excepted.check(a, isIPv6(a) ? 'ipv6' : 'ipv4');
    for (const guarded of ['10.1.2.3', '172.20.0.5', '192.168.1.1', '127.0.0.1', '169.254.169.254', '100.64.0.1', '224.0.0.1', 'fd00::1', 'fe80::1', '::1']) {
      expect([guarded, isPrivateAddress(guarded), inExcept(guarded)]).toEqual([guarded, true, true]);
    }
    for (const open of ['8.8.8.8', '140.82.112.3', '2606:4700::1111']) expect([open, isPrivateAddress(open), inExcept(open)]).toEqual([open, false, false]);

    // an inline hook on another port opens that port too
    expect(webhookRules(rendered.get('webhooks inline')!).get('gateway')![0].ports!.map((p) => p.port)).toEqual([443, 80, 8443]);
    // `ports: []`: every port; and the rule can be turned off
    expect(webhookRules(renderChart({ 'networkPolicy.webhookEgress.ports': [] })).get('gateway')![0].ports).toBeUndefined();
    expect(webhookRules(renderChart({ 'networkPolicy.webhookEgress.enabled': false })).get('gateway')).toEqual([]);
  }, 60_000);
});

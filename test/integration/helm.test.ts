/**
 * The Helm chart (deploy/helm/talos-image-factory), checked offline with the real helm binary: lint, rendering of
 * several values sets, every object against the Kubernetes schemas (unknown fields rejected), and the chart's
 * security and routing promises. test/integration/helm-runs.test.ts runs what it renders.
 */
import {
  checkShape, CHART_DIR, CRD_SHAPES, helm, helmMissingReason, isCustomResource, K8sObject, objectsOf, renderChart, unknownFields, validateWithModels,
} from '../support/helm';
import { describeIf } from '../support/skip';

interface Container {
  name: string;
  command?: string[];
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
  volumes?: { name: string; secret?: { secretName: string }; emptyDir?: { sizeLimit?: string } }[];
}
type Workload = K8sObject & { spec: { replicas?: number; strategy?: { type: string }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } };

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
});

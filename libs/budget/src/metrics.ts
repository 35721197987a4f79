/** Storage budget metrics (Prometheus), set by whichever process ran the last eviction pass. */
import { Counter, Gauge, Registry } from '@factory/telemetry';
import type { EvictionReport } from './evict';

export interface BudgetMetrics {
  observe(report: EvictionReport, budgetBytes: number): void;
}

export function registerBudgetMetrics(registry: Registry): BudgetMetrics {
  const storedBytes = new Gauge({ name: 'image_factory_storage_bytes', help: 'Bytes in the object store by class (artifacts, schematics, oci), as of the last eviction pass', labelNames: ['class'], registers: [registry] });
  const storedObjects = new Gauge({ name: 'image_factory_storage_objects', help: 'Objects in the object store by class, as of the last eviction pass', labelNames: ['class'], registers: [registry] });
  const budget = new Gauge({ name: 'image_factory_storage_budget_bytes', help: 'Storage budget in bytes (-1: unlimited)', registers: [registry] });
  const evictedBytes = new Counter({ name: 'image_factory_storage_evicted_bytes_total', help: 'Bytes of artifacts evicted (least recently used first)', registers: [registry] });
  const evictedObjects = new Counter({ name: 'image_factory_storage_evicted_objects_total', help: 'Objects evicted (artifacts and their signature files)', registers: [registry] });
  const passes = new Counter({ name: 'image_factory_storage_eviction_passes_total', help: 'Eviction passes run, by whether storage was left over budget', labelNames: ['over_budget'], registers: [registry] });
  return {
    observe(report, budgetBytes) {
      for (const [cls, n] of Object.entries(report.bytes)) storedBytes.set({ class: cls }, Math.max(0, n - (cls === 'artifacts' ? report.evictedBytes : 0)));
      for (const [cls, n] of Object.entries(report.objects)) storedObjects.set({ class: cls }, Math.max(0, n - (cls === 'artifacts' ? report.evictedObjects : 0)));
      budget.set(Number.isFinite(budgetBytes) ? budgetBytes : -1);
      evictedBytes.inc(report.evictedBytes);
      evictedObjects.inc(report.evictedObjects);
      passes.inc({ over_budget: String(report.overBudget) });
    },
  };
}

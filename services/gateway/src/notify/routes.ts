/**
 * `/prewarm/<schematic>` and `/webhooks[/<id>[/deliveries]]` (contract-14.md): JSON in and out, errors in the anchor's
 * plain-text style, bodies up to 64 KiB.
 */
import type { Request, Response } from 'express';
import { parseWebhookSpec } from '@factory/config';
import { FactoryError } from '@factory/errors';
import { readRequestBody } from '@factory/http';
import { isSchematicId } from '@factory/schematic';
import { parseAssetPath, ProfilePathError } from '@factory/talos';
import type { Routes } from '../compat';
import { sendBody } from '../compat';
import type { Notifier } from './service';
import { isWebhookId, webhookView } from './service';
import type { Resolve } from './ssrf';
import { webhookTargetProblem } from './ssrf';
import type { NotifyStore, StoredWebhook } from './store';

export const MAX_NOTIFY_BODY_BYTES = 64 * 1024;
export const MAX_PREWARM_ASSETS = 16;
export const MAX_WEBHOOKS_PER_SCHEMATIC = 20;

export interface NotifyRouteOptions {
  notifier: Notifier;
  store: NotifyStore;
  /** throws the edge's 404 `schematic ID "x" not found` for an unknown schematic */
  requireSchematic: (id: string) => Promise<void>;
  allowPrivateTargets: boolean;
  resolve: Resolve;
}

const sendJson = (res: Response, status: number, value: unknown) => sendBody(res, status, 'application/json; charset=utf-8', JSON.stringify(value));

async function readJson(req: Request, res: Response, what: string): Promise<unknown> {
  const body = await readRequestBody(req, res, MAX_NOTIFY_BODY_BYTES);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new FactoryError(400, `invalid ${what} request: body is not JSON`);
  }
}

async function checkedSchematic(o: NotifyRouteOptions, id: string): Promise<string> {
  if (!isSchematicId(id)) throw new FactoryError(404, `schematic ID ${JSON.stringify(id)} not found`);
  await o.requireSchematic(id);
  return id;
}

/** The asset paths of a pre-warm body: 1..16 paths `/image` accepts (checked with its parser and messages), deduplicated. */
export function parsePrewarmBody(value: unknown): string[] {
  const bad = (why: string) => new FactoryError(400, `invalid prewarm request: ${why}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('expected a JSON object');
  const unknown = Object.keys(value).find((k) => k !== 'assets');
  if (unknown !== undefined) throw bad(`unknown field ${JSON.stringify(unknown)}`);
  const assets = (value as { assets?: unknown }).assets;
  if (!Array.isArray(assets) || assets.length === 0 || !assets.every((a) => typeof a === 'string')) throw bad('"assets" must be a non-empty array of asset paths');
  const unique = [...new Set(assets as string[])];
  if (unique.length > MAX_PREWARM_ASSETS) throw new FactoryError(400, `too many prewarm assets: ${unique.length} (limit ${MAX_PREWARM_ASSETS})`);
  for (const path of unique) {
    try {
      parseAssetPath(path);
    } catch (err) {
      if (err instanceof ProfilePathError) throw new FactoryError(400, `error parsing profile from path: ${err.message}`);
      throw err;
    }
  }
  return unique;
}

export function addNotifyRoutes(routes: Routes, o: NotifyRouteOptions): void {
  const { notifier, store } = o;

  routes.add(['PUT'], '/prewarm/:schematic', async (req, res) => {
    const body = await readJson(req, res, 'prewarm');
    const schematic = await checkedSchematic(o, req.params.schematic);
    const set = { schematic, assets: parsePrewarmBody(body), updatedAt: new Date().toISOString() };
    await store.putPrewarm(set);
    sendJson(res, 200, set);
  });
  // a malformed ID is answered as the edge answers it (quoted: it may hold anything)
  const schematicParam = (raw: string): string => {
    if (!isSchematicId(raw)) throw new FactoryError(404, `schematic ID ${JSON.stringify(raw)} not found`);
    return raw;
  };
  routes.add(['GET'], '/prewarm/:schematic', async (req, res) => {
    const schematic = schematicParam(req.params.schematic);
    const set = await store.getPrewarm(schematic);
    if (!set) throw new FactoryError(404, `no prewarm set for schematic ${schematic}`);
    sendJson(res, 200, set);
  });
  routes.add(['DELETE'], '/prewarm/:schematic', async (req, res) => {
    await store.deletePrewarm(schematicParam(req.params.schematic));
    res.status(204).end();
  });

  routes.add(['POST'], '/webhooks', async (req, res) => {
    const checked = parseWebhookSpec(await readJson(req, res, 'webhook'));
    if ('problem' in checked) throw new FactoryError(400, `invalid webhook request: ${checked.problem}`);
    const spec = checked.spec;
    if (spec.schematic !== undefined) await checkedSchematic(o, spec.schematic);
    const problem = await webhookTargetProblem(spec.url, o.allowPrivateTargets, o.resolve);
    if (problem) throw new FactoryError(400, problem);
    // a bound per scope, checked before adding (concurrent registrations may pass it together: it bounds abuse, not
    // an exact count)
    if ((await store.webhookIds(spec.schematic)).length >= MAX_WEBHOOKS_PER_SCHEMATIC) {
      throw new FactoryError(400, `too many webhooks for ${spec.schematic ? `schematic ${spec.schematic}` : 'all schematics'} (limit ${MAX_WEBHOOKS_PER_SCHEMATIC})`);
    }
    const hook: StoredWebhook = { ...spec, id: notifier.newWebhookId(), createdAt: new Date().toISOString() };
    await store.putWebhook(hook);
    res.setHeader('Location', `/webhooks/${hook.id}`);
    sendJson(res, 201, webhookView(hook));
  });
  const found = async (id: string): Promise<StoredWebhook> => {
    if (!isWebhookId(id)) throw new FactoryError(400, `invalid webhook ID ${JSON.stringify(id)}`);
    const hook = await notifier.webhook(id);
    if (!hook) throw new FactoryError(404, `webhook ${id} not found`);
    return hook;
  };
  routes.add(['GET'], '/webhooks/:id', async (req, res) => {
    sendJson(res, 200, webhookView(await found(req.params.id)));
  });
  routes.add(['DELETE'], '/webhooks/:id', async (req, res) => {
    const hook = await found(req.params.id);
    if (notifier.isGlobal(hook.id)) throw new FactoryError(409, `webhook ${hook.id} is configured by FACTORY_WEBHOOKS and cannot be deleted`);
    await store.deleteWebhook(hook);
    await notifier.forgetDeliveryLog(hook.id);
    res.status(204).end();
  });
  routes.add(['GET'], '/webhooks/:id/deliveries', async (req, res) => {
    const hook = await found(req.params.id);
    sendJson(res, 200, { deliveries: await notifier.deliveryLog(hook.id) });
  });
}

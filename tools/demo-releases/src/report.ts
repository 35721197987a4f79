/** Parser for the demo init's serial-console report (format documented in init-script.ts). */

export interface ReportLayer {
  index: number;
  image: string;
  sha256: string;
  name?: string;
  version?: string;
  mounted?: boolean;
  schematics: string[];
  markers: Record<string, string>;
  modules: string[];
  modulesIndex: string[];
  files: string[];
}

export interface FixtureReport {
  /** every FIXTURE line, without the "FIXTURE " prefix, in order */
  lines: string[];
  begun: boolean;
  done: boolean;
  talosVersion?: string;
  arch?: string;
  kernel?: string;
  cmdline?: string;
  firmwareMode?: 'uefi' | 'bios';
  secureBoot?: boolean;
  metaEnv: string[];
  overlayArgs: string[];
  kmods: Record<string, string>;
  microcode: Record<string, number>;
  dmesgMicrocode: string[];
  /** reassembled /extensions.yaml (undefined when the initramfs had none) */
  extensionsYaml?: string;
  layerCount?: number;
  layers: ReportLayer[];
  /** name/version pairs in layer order */
  extensions: Array<{ name: string; version: string }>;
  schematics: string[];
  markers: Record<string, string>;
  rootfs?: 'ok' | 'failed';
  overlay?: 'ok' | 'failed' | 'none';
  modulesDep: string[];
  moduleLoads: Record<string, string>;
  firmware: string[];
  partitions: Array<{ dev: string; name: string }>;
  metaPartition?: string;
  /** first 4 KiB of META, reassembled from meta-hex lines */
  metaBytes?: Buffer;
}

/** Parse serial output (any noise around the FIXTURE lines is ignored). */
export function parseFixtureReport(serial: string): FixtureReport {
  const r: FixtureReport = {
    lines: [],
    begun: false,
    done: false,
    metaEnv: [],
    overlayArgs: [],
    kmods: {},
    microcode: {},
    dmesgMicrocode: [],
    layers: [],
    extensions: [],
    schematics: [],
    markers: {},
    modulesDep: [],
    moduleLoads: {},
    firmware: [],
    partitions: [],
  };
  let yaml: string[] | null = null;
  const meta: Array<[number, Buffer]> = [];
  const layer = (n: number) => r.layers.find((l) => l.index === n);
  for (const raw of serial.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const at = line.indexOf('FIXTURE ');
    if (at < 0) continue;
    const body = line.slice(at + 'FIXTURE '.length);
    r.lines.push(body);
    if (body.startsWith('| ') || body === '|') {
      if (yaml) yaml.push(body.slice(2));
      continue;
    }
    const sp = body.indexOf(' ');
    const key = sp < 0 ? body : body.slice(0, sp);
    const rest = sp < 0 ? '' : body.slice(sp + 1);
    const words = rest.split(' ');
    switch (key) {
      case 'begin': r.begun = true; break;
      case 'done': r.done = true; break;
      case 'talos-version': r.talosVersion = rest; break;
      case 'arch': r.arch = rest; break;
      case 'kernel': r.kernel = rest; break;
      case 'cmdline': r.cmdline = rest; break;
      case 'firmware-mode': r.firmwareMode = rest as 'uefi' | 'bios'; break;
      case 'secureboot': r.secureBoot = rest === 'enabled'; break;
      case 'meta-env': r.metaEnv.push(rest); break;
      case 'overlay-arg': r.overlayArgs.push(rest); break;
      case 'kmod': r.kmods[words[0]] = words[1]; break;
      case 'microcode': r.microcode[words[0]] = Number(words[1]); break;
      case 'dmesg-microcode': r.dmesgMicrocode.push(rest); break;
      case 'extensions.yaml':
        if (rest === 'begin') yaml = [];
        else if (rest === 'end' && yaml) { r.extensionsYaml = yaml.join('\n') + (yaml.length ? '\n' : ''); yaml = null; }
        break;
      case 'layers': r.layerCount = Number(rest); break;
      case 'layer':
        r.layers.push({ index: Number(words[0]), image: words[1], sha256: words[2], schematics: [], markers: {}, modules: [], modulesIndex: [], files: [] });
        break;
      case 'extension': {
        const l = r.layers[r.layers.length - 1];
        if (l) { l.name = words[0]; l.version = words.slice(1).join(' '); }
        r.extensions.push({ name: words[0], version: words.slice(1).join(' ') });
        break;
      }
      case 'layer-mount': { const l = layer(Number(words[0])); if (l) l.mounted = words[1] === 'ok'; break; }
      case 'schematic': { r.schematics.push(rest); const l = r.layers[r.layers.length - 1]; if (l) l.schematics.push(rest); break; }
      case 'marker': {
        const content = words.slice(1).join(' ');
        r.markers[words[0]] = content;
        const l = r.layers[r.layers.length - 1];
        if (l) l.markers[words[0]] = content;
        break;
      }
      case 'module': { const l = layer(Number(words[0])); if (l) l.modules.push(words[1]); break; }
      case 'modules-index': { const l = layer(Number(words[0])); if (l) l.modulesIndex.push(words[1]); break; }
      case 'file': { const l = layer(Number(words[0])); if (l) l.files.push(words.slice(1).join(' ')); break; }
      case 'rootfs': r.rootfs = rest as 'ok' | 'failed'; break;
      case 'overlay': r.overlay = rest as 'ok' | 'failed' | 'none'; break;
      case 'modules.dep': r.modulesDep.push(rest); break;
      case 'module-load': r.moduleLoads[words[0]] = words[1]; break;
      case 'firmware': r.firmware.push(rest); break;
      case 'partition': r.partitions.push({ dev: words[0], name: words.slice(1).join(' ') }); break;
      case 'meta-partition': r.metaPartition = rest; break;
      case 'meta-hex': meta.push([Number(words[0]), Buffer.from(words[1] ?? '', 'hex')]); break;
      default: break;
    }
  }
  if (meta.length) {
    const size = Math.max(...meta.map(([o, b]) => o + b.length));
    const buf = Buffer.alloc(size, 0);
    for (const [o, b] of meta) b.copy(buf, o);
    r.metaBytes = buf;
  }
  return r;
}

import { gunzipSync } from 'zlib';
import {
  buildCmdline,
  buildFactoryCmdline,
  CmdlineInput,
  defaultKernelArgs,
  encodeMetaPayload,
  KernelCmdline,
  KNOWN_PLATFORMS,
  metaEnvValue,
  parseKernelArgs,
  parseSemver,
  resetCmdline,
  SemVer,
} from '../src';

const v = (s: string): SemVer => parseSemver(s)!;

const base = (over: Partial<CmdlineInput>): CmdlineInput => ({
  platform: 'metal',
  arch: 'amd64',
  version: v('1.11.0'),
  kind: 'cmdline',
  secureboot: false,
  ...over,
});

// Literal default-argument strings from talos-formats §5.2.
const DEFAULTS_LT_1_10 =
  'init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512';
const DEFAULTS_1_10 = `${DEFAULTS_LT_1_10} selinux=1`;
const DEFAULTS_1_11 = 'init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1';
const DEFAULTS_1_12 = `${DEFAULTS_1_11} module.sig_enforce=1`;
const DEFAULTS_1_13 = `${DEFAULTS_1_12} proc_mem.force_override=never`;
const DEFAULTS_1_14 = 'slab_nomerge pti=on consoleblank=0 printk.devkmsg=on selinux=1 module.sig_enforce=1 proc_mem.force_override=never';
const META_VECTOR = 'MHhhPXsiZXh0ZXJuYWxJUHMiOlsiMS4yLjMuNCJdfQ==';
const META = [{ key: 10, value: '{"externalIPs":["1.2.3.4"]}' }];

describe('KernelCmdline (go-procfs semantics)', () => {
  test('parse groups repeated keys under the first occurrence; empty value renders bare', () => {
    expect(parseKernelArgs('a=1 b c=3 a=2 b= d=x=y\n')).toEqual([
      { key: 'a', values: ['1', '2'] },
      { key: 'b', values: ['', ''] },
      { key: 'c', values: ['3'] },
      { key: 'd', values: ['x=y'] },
    ]);
    expect(new KernelCmdline('a=1 b c=3 a=2 b= d=x=y').toString()).toBe('a=1 a=2 b b c=3 d=x=y');
    expect(new KernelCmdline(['slab_nomerge=', 'pti=on']).toString()).toBe('slab_nomerge pti=on');
    expect(new KernelCmdline('  \t ').toString()).toBe('');
    expect(new KernelCmdline(['a b', 'c\u00a0d']).keys()).toEqual(['a', 'b', 'c', 'd']);
    expect(new KernelCmdline('=x').toString()).toBe('=x');
  });

  test('set replaces in place or appends; setAll does it per key', () => {
    const c = new KernelCmdline('a=1 b=2 c=3');
    c.set('b', ['x', 'y']).set('z', ['9']);
    expect(c.toString()).toBe('a=1 b=x b=y c=3 z=9');
    c.setAll('c=4 c=5 a=0 new');
    expect(c.toString()).toBe('a=0 b=x b=y c=4 c=5 z=9 new');
    expect(c.get('c')).toEqual(['4', '5']);
    expect(c.get('nope')).toBeUndefined();
  });

  test('append / appendAll add to the key group', () => {
    const c = new KernelCmdline('a=1 b=2');
    c.append('a', '3').append('c', '');
    c.appendAll(['b=4', 'a']);
    expect(c.toString()).toBe('a=1 a=3 a b=2 b=4 c');
  });

  test('appendAll options: overwrite and negation', () => {
    const opts = { overwrite: ['console'], deleteNegated: true };
    expect(new KernelCmdline('console=a x=1 console=b y').appendAll('console=c', opts).toString()).toBe('console=c x=1 y');
    expect(new KernelCmdline('x=1 y=2 y=3').appendAll('-y', opts).toString()).toBe('x=1');
    expect(new KernelCmdline('x=1 y=2 y=3').appendAll('-y=', opts).toString()).toBe('x=1');
    expect(new KernelCmdline('x=1 y=2 y=3').appendAll('-y=3', opts).toString()).toBe('x=1 y=2');
    // the key stays (without values) and keeps its position for later appends
    const c = new KernelCmdline('x=1 y=2 z=3').appendAll('-y=2', opts);
    expect(c.toString()).toBe('x=1 z=3');
    expect(c.has('y')).toBe(true);
    expect(c.appendAll('y=5').toString()).toBe('x=1 y=5 z=3');
    // first value decides: `-y=2 -y` removes only the listed values (including the bare one)
    expect(new KernelCmdline('y y=2 y=3').appendAll('-y=2 -y', opts).toString()).toBe('y=3');
    // `-y -y=2` deletes the whole key
    expect(new KernelCmdline('y y=2 y=3').appendAll('-y -y=2', opts).toString()).toBe('');
    // a lone `-` is a normal argument; without the option negations append
    expect(new KernelCmdline('x').appendAll('-', opts).toString()).toBe('x -');
    expect(new KernelCmdline('x').appendAll('-x').toString()).toBe('x -x');
    // delete of an absent key is a no-op
    expect(new KernelCmdline('x').appendAll('-nope -nope=1', opts).toString()).toBe('x');
  });

  test('delete / deleteAll', () => {
    const c = new KernelCmdline('a=1 a=2 b');
    expect(c.delete('a', ['2']).toString()).toBe('a=1 b');
    expect(c.deleteAll('a').toString()).toBe('b');
    expect(c.keys()).toEqual(['b']);
  });
});

describe('defaultKernelArgs by version', () => {
  test.each([
    ['1.2.0', DEFAULTS_LT_1_10],
    ['1.9.5', DEFAULTS_LT_1_10],
    ['1.10.0', DEFAULTS_1_10],
    ['1.10.99', DEFAULTS_1_10],
    ['1.11.0-beta.1', DEFAULTS_1_11],
    ['1.11.5', DEFAULTS_1_11],
    ['1.12.0', DEFAULTS_1_12],
    ['1.13.3', DEFAULTS_1_13],
    ['1.14.0-rc.1', DEFAULTS_1_14],
    ['1.15.0', DEFAULTS_1_14],
  ])('%s', (version, expected) => {
    expect(new KernelCmdline(defaultKernelArgs(v(version))).toString()).toBe(expected);
  });
});

describe('buildCmdline: spec vectors', () => {
  test('anchor §3.4 cmdline-metal-amd64 v1.5.x', () => {
    expect(buildCmdline(base({ version: v('1.5.0') }))).toBe(
      'talos.platform=metal console=ttyS0 console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512',
    );
  });
  test('anchor §3.4 cmdline-metal-amd64 v1.11.0', () => {
    expect(buildCmdline(base({}))).toBe(
      'talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1',
    );
  });
  test('anchor §3.4 cmdline-metal-amd64 v1.13.0', () => {
    expect(buildCmdline(base({ version: v('1.13.0') }))).toBe(
      'talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 module.sig_enforce=1 proc_mem.force_override=never',
    );
  });
  test('anchor §3.4 cmdline-aws-arm64 v1.11.0', () => {
    expect(buildCmdline(base({ platform: 'aws', arch: 'arm64' }))).toBe(
      'talos.platform=aws console=tty1 console=ttyS0 net.ifnames=0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1',
    );
  });
  test('anchor §3.4 extra args append at the end; meta before them', () => {
    const plain = buildCmdline(base({}));
    expect(buildCmdline(base({ extraArgs: ['nolapic', 'nomodeset'] }))).toBe(`${plain} nolapic nomodeset`);
    expect(buildCmdline(base({ meta: META }))).toBe(`${plain} talos.environment=INSTALLER_META_BASE64=${META_VECTOR}`);
    expect(buildCmdline(base({ meta: META, extraArgs: ['nolapic', 'nomodeset'] }))).toBe(
      `${plain} talos.environment=INSTALLER_META_BASE64=${META_VECTOR} nolapic nomodeset`,
    );
  });
  test('anchor §3.4 installer arm64 metal UKI cmdline', () => {
    expect(buildCmdline(base({ arch: 'arm64', kind: 'installer' }))).toBe(`talos.platform=metal console=ttyAMA0 console=tty0 ${DEFAULTS_1_11}`);
  });
  test('anchor §4 PXE vectors', () => {
    expect(buildCmdline(base({ version: v('1.5.0'), platform: 'equinixMetal' }))).toBe(
      'talos.platform=equinixMetal console=ttyS1,115200n8 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512',
    );
    expect(buildCmdline(base({ secureboot: true }))).toBe(
      'talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 lockdown=confidentiality',
    );
    expect(buildCmdline(base({ version: v('1.5.0'), secureboot: true }))).toBe(
      'talos.platform=metal console=ttyS0 console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512 lockdown=confidentiality',
    );
  });
  test('talos-formats §5.2 examples', () => {
    expect(buildCmdline(base({ version: v('1.7.0') }))).toBe(
      'talos.platform=metal console=ttyS0 console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512',
    );
    expect(buildCmdline(base({ version: v('1.13.0'), platform: 'aws' }))).toBe(
      'talos.platform=aws console=tty1 console=ttyS0 net.ifnames=0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 module.sig_enforce=1 proc_mem.force_override=never',
    );
    expect(buildCmdline(base({ version: v('1.14.0'), arch: 'arm64' }))).toBe(
      'talos.platform=metal console=ttyAMA0 console=tty0 slab_nomerge pti=on consoleblank=0 printk.devkmsg=on selinux=1 module.sig_enforce=1 proc_mem.force_override=never',
    );
    expect(buildCmdline(base({ version: v('1.14.0'), platform: 'aws' }))).toBe(
      'talos.platform=aws console=tty1 console=ttyS0 net.ifnames=0 nvme_core.io_timeout=4294967295 slab_nomerge pti=on consoleblank=0 printk.devkmsg=on selinux=1 module.sig_enforce=1 proc_mem.force_override=never',
    );
    expect(buildCmdline(base({ version: v('1.14.0'), platform: 'aws', arch: 'arm64' }))).toBe(
      'talos.platform=aws console=tty1 console=ttyS0 net.ifnames=0 nvme_core.io_timeout=4294967295 slab_nomerge pti=on consoleblank=0 printk.devkmsg=on selinux=1 module.sig_enforce=1 proc_mem.force_override=never',
    );
  });
  test('factory integration expectations (1.10: IMA and selinux together)', () => {
    expect(buildCmdline(base({ version: v('1.10.0'), platform: 'nocloud', kind: 'uki' }))).toBe(
      'talos.platform=nocloud console=tty1 console=ttyS0 net.ifnames=0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512 selinux=1',
    );
    expect(buildCmdline(base({ version: v('1.10.3'), arch: 'arm64', kind: 'installer' }))).toBe(
      'talos.platform=metal console=ttyAMA0 console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512 selinux=1',
    );
  });
});

// Literal platform args from talos-formats §5.3 (metal/aws/vmware/equinix handled per arch & version below).
const PLATFORM_ARGS: Record<string, string> = {
  akamai: 'console=ttyS0 console=tty0 console=tty1 net.ifnames=0',
  alibabacloud: 'console=tty1 console=ttyS0 net.ifnames=0',
  azure: 'console=ttyS0,115200n8 earlyprintk=ttyS0,115200 rootdelay=300 net.ifnames=0 talos.dashboard.disabled=1 sysctl.kernel.kexec_load_disabled=1',
  cloudstack: 'console=tty1 console=ttyS0 net.ifnames=0',
  container: '',
  'digital-ocean': 'console=ttyS0 console=tty0 console=tty1 net.ifnames=0',
  exoscale: 'console=tty1 console=ttyS0 net.ifnames=0',
  gcp: 'console=ttyS0 net.ifnames=0 talos.dashboard.disabled=1 sysctl.kernel.kexec_load_disabled=1',
  hcloud: 'console=tty1 console=ttyS0 net.ifnames=0',
  nocloud: 'console=tty1 console=ttyS0 net.ifnames=0',
  opennebula: 'console=tty1 console=ttyS0 net.ifnames=0',
  openstack: 'console=tty1 console=ttyS0 net.ifnames=0',
  oracle: 'console=tty1 console=ttyS0 net.ifnames=0 talos.dashboard.disabled=1',
  scaleway: 'console=tty1 console=ttyS0 net.ifnames=0 talos.dashboard.disabled=1',
  upcloud: 'net.ifnames=0',
  vultr: 'net.ifnames=0',
};

function expectedFor(platform: string, arch: 'amd64' | 'arm64', version: string): string {
  const old = version === '1.7.4';
  let args: string;
  const defaults = { '1.7.4': DEFAULTS_LT_1_10, '1.11.0': DEFAULTS_1_11, '1.14.0': DEFAULTS_1_14 }[version]!;
  switch (platform) {
    case 'metal':
      args = arch === 'arm64' ? 'console=ttyAMA0 console=tty0' : old ? 'console=ttyS0 console=tty0' : 'console=tty0';
      break;
    case 'aws':
      args = 'console=tty1 console=ttyS0 net.ifnames=0';
      if (version === '1.14.0') args += ' nvme_core.io_timeout=4294967295';
      break;
    case 'vmware':
      args =
        arch === 'amd64'
          ? 'talos.config=guestinfo console=tty0 console=ttyS0 earlyprintk=ttyS0,115200 net.ifnames=0'
          : 'talos.config=guestinfo console=tty0 console=ttyAMA0 net.ifnames=0';
      break;
    case 'equinixMetal':
    case 'packet':
      args = arch === 'amd64' ? 'console=ttyS1,115200n8' : 'console=ttyAMA0,115200';
      break;
    default:
      args = PLATFORM_ARGS[platform];
  }
  const name = platform === 'packet' ? 'equinixMetal' : platform;
  return [`talos.platform=${name}`, args, defaults].filter(Boolean).join(' ');
}

describe('buildCmdline: every platform × arch × version', () => {
  for (const version of ['1.7.4', '1.11.0', '1.14.0']) {
    for (const platform of KNOWN_PLATFORMS) {
      for (const arch of ['amd64', 'arm64'] as const) {
        test(`${platform}-${arch} v${version}`, () => {
          const expected = expectedFor(platform, arch, version);
          expect(buildCmdline(base({ platform, arch, version: v(version) }))).toBe(expected);
          expect(buildCmdline(base({ platform, arch, version: v(version), secureboot: true }))).toBe(`${expected} lockdown=confidentiality`);
        });
      }
    }
  }

  test('unknown platforms throw like the imager', () => {
    expect(() => buildCmdline(base({ platform: 'nope' }))).toThrow('unknown platform: "nope"');
  });
});

describe('buildCmdline: output kinds, overlays, secure boot', () => {
  test('ISO ≥ 1.8 gets talos.halt_if_installed=1 after the platform args', () => {
    expect(buildCmdline(base({ kind: 'iso' }))).toBe(`talos.platform=metal console=tty0 talos.halt_if_installed=1 ${DEFAULTS_1_11}`);
    expect(buildCmdline(base({ kind: 'iso', version: v('1.8.0-alpha.1') }))).toBe(
      'talos.platform=metal console=tty0 talos.halt_if_installed=1 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512',
    );
    expect(buildCmdline(base({ kind: 'iso', version: v('1.7.6') }))).toBe(`talos.platform=metal console=ttyS0 console=tty0 ${DEFAULTS_LT_1_10}`);
    expect(buildCmdline(base({ kind: 'image' }))).toBe(`talos.platform=metal console=tty0 ${DEFAULTS_1_11}`);
  });

  test('ISO secure boot with meta and extra args, full order', () => {
    expect(buildCmdline(base({ kind: 'iso', platform: 'nocloud', secureboot: true, meta: META, extraArgs: ['console=ttyS1', 'foo'] }))).toBe(
      `talos.platform=nocloud console=ttyS1 net.ifnames=0 talos.halt_if_installed=1 ${DEFAULTS_1_11} lockdown=confidentiality talos.environment=INSTALLER_META_BASE64=${META_VECTOR} foo`,
    );
  });

  test('secure boot lockdown is added for every version (pinned rc.1 behaviour)', () => {
    expect(buildCmdline(base({ version: v('1.14.0'), secureboot: true }))).toBe(`talos.platform=metal console=tty0 ${DEFAULTS_1_14} lockdown=confidentiality`);
  });

  test('META is never rendered for disk images', () => {
    expect(buildCmdline(base({ kind: 'image', meta: META }))).toBe(`talos.platform=metal console=tty0 ${DEFAULTS_1_11}`);
    expect(buildCmdline(base({ kind: 'image', meta: META, extraArgs: ['a'] }))).toBe(`talos.platform=metal console=tty0 ${DEFAULTS_1_11} a`);
    expect(buildCmdline(base({ kind: 'cmdline', meta: [] }))).toBe(`talos.platform=metal console=tty0 ${DEFAULTS_1_11}`);
  });

  test('overlay args are set (replacing consoles in place) before the defaults', () => {
    const rpi = ['console=tty0', 'console=ttyAMA0,115200', 'sysctl.kernel.kexec_load_disabled=1', 'talos.dashboard.disabled=1'];
    expect(buildCmdline(base({ arch: 'arm64', kind: 'image', overlayArgs: rpi }))).toBe(
      `talos.platform=metal console=tty0 console=ttyAMA0,115200 sysctl.kernel.kexec_load_disabled=1 talos.dashboard.disabled=1 ${DEFAULTS_1_11}`,
    );
    expect(buildCmdline(base({ arch: 'arm64', kind: 'iso', overlayArgs: ['console=ttyS2', 'talos.halt_if_installed=0'] }))).toBe(
      `talos.platform=metal console=ttyS2 talos.halt_if_installed=0 ${DEFAULTS_1_11}`,
    );
  });
});

describe('buildCmdline: extra kernel args', () => {
  const M = `talos.platform=metal console=tty0`;
  test.each<[string[], string]>([
    [['console=ttyS1'], `talos.platform=metal console=ttyS1 ${DEFAULTS_1_11}`],
    [['console=ttyS1', 'console=tty0'], `talos.platform=metal console=ttyS1 console=tty0 ${DEFAULTS_1_11}`],
    [['console=ttyS1 foo console=tty2'], `talos.platform=metal console=ttyS1 console=tty2 ${DEFAULTS_1_11} foo`],
    [['-console'], `talos.platform=metal ${DEFAULTS_1_11}`],
    [['-console', 'console=ttyS3'], `talos.platform=metal ${DEFAULTS_1_11} console=ttyS3`],
    [['-console=tty0', 'console=ttyS3'], `talos.platform=metal console=ttyS3 ${DEFAULTS_1_11}`],
    [['-console=tty0'], `talos.platform=metal ${DEFAULTS_1_11}`],
    [['-console=ttyX'], `${M} ${DEFAULTS_1_11}`],
    [['-selinux'], `${M} ${DEFAULTS_1_11.replace(' selinux=1', '')}`],
    [['-slab_nomerge'], `${M} ${DEFAULTS_1_11.replace(' slab_nomerge', '')}`],
    [['-init_on_alloc=1'], `${M} ${DEFAULTS_1_11.replace('init_on_alloc=1 ', '')}`],
    [['-pti='], `${M} ${DEFAULTS_1_11.replace(' pti=on', '')}`],
    [['-nonexistent'], `${M} ${DEFAULTS_1_11}`],
    [['-'], `${M} ${DEFAULTS_1_11} -`],
    [['nvme_core.io_timeout=1'], `${M} ${DEFAULTS_1_11.replace('nvme_core.io_timeout=4294967295', 'nvme_core.io_timeout=4294967295 nvme_core.io_timeout=1')}`],
    [['pti=off'], `${M} ${DEFAULTS_1_11.replace('pti=on', 'pti=on pti=off')}`],
    [['slab_nomerge'], `${M} ${DEFAULTS_1_11.replace('slab_nomerge', 'slab_nomerge slab_nomerge')}`],
    [['talos.platform=aws'], `talos.platform=aws console=tty0 ${DEFAULTS_1_11}`],
    [['talos.platform=aws', '-console'], `talos.platform=aws ${DEFAULTS_1_11}`],
    [['foo=a', 'foo=b', 'bar'], `${M} ${DEFAULTS_1_11} foo=a foo=b bar`],
    [['foo=a bar', 'foo=b'], `${M} ${DEFAULTS_1_11} foo=a foo=b bar`],
    [['talos.config=https://example.com/c?x=1&y=${uuid}'], `${M} ${DEFAULTS_1_11} talos.config=https://example.com/c?x=1&y=\${uuid}`],
    [['-talos.platform'], `console=tty0 ${DEFAULTS_1_11}`],
    [[''], `${M} ${DEFAULTS_1_11}`],
  ])('%j', (extraArgs, expected) => {
    expect(buildCmdline(base({ extraArgs }))).toBe(expected);
  });

  test('negating the META env arg and secure boot args', () => {
    expect(buildCmdline(base({ meta: META, extraArgs: ['-talos.environment'] }))).toBe(`${M} ${DEFAULTS_1_11}`);
    expect(buildCmdline(base({ secureboot: true, extraArgs: ['-lockdown'] }))).toBe(`${M} ${DEFAULTS_1_11}`);
    expect(buildCmdline(base({ secureboot: true, extraArgs: ['lockdown=integrity'] }))).toBe(`${M} ${DEFAULTS_1_11} lockdown=confidentiality lockdown=integrity`);
  });

  test('metal amd64 < 1.8: consoles replaced as a whole', () => {
    expect(buildCmdline(base({ version: v('1.7.0'), extraArgs: ['-console=tty0'] }))).toBe(`talos.platform=metal console=ttyS0 ${DEFAULTS_LT_1_10}`);
    expect(buildCmdline(base({ version: v('1.7.0'), extraArgs: ['console=ttyS1,115200'] }))).toBe(
      `talos.platform=metal console=ttyS1,115200 ${DEFAULTS_LT_1_10}`,
    );
  });
});

describe('buildFactoryCmdline: per-output customization rules', () => {
  const extraArgs = ['nolapic'];
  const plain = `talos.platform=metal console=tty0 ${DEFAULTS_1_11}`;
  const env = `talos.environment=INSTALLER_META_BASE64=${META_VECTOR}`;
  test('cmdline / ISO get extra args and META', () => {
    expect(buildFactoryCmdline(base({ extraArgs, meta: META }))).toBe(`${plain} ${env} nolapic`);
    expect(buildFactoryCmdline(base({ kind: 'iso', extraArgs, meta: META }))).toBe(
      `talos.platform=metal console=tty0 talos.halt_if_installed=1 ${DEFAULTS_1_11} ${env} nolapic`,
    );
  });
  test('disk images get extra args; META goes to the partition', () => {
    expect(buildFactoryCmdline(base({ kind: 'image', extraArgs, meta: META }))).toBe(`${plain} nolapic`);
  });
  test('kernel / initramfs get neither', () => {
    expect(buildFactoryCmdline(base({ kind: 'kernel', extraArgs, meta: META }))).toBe(plain);
    expect(buildFactoryCmdline(base({ kind: 'initramfs', extraArgs, meta: META }))).toBe(plain);
  });
  test('UKI / installer: extra args only with secure boot or ≥ 1.10; never META', () => {
    expect(buildFactoryCmdline(base({ kind: 'uki', extraArgs, meta: META }))).toBe(`${plain} nolapic`);
    expect(buildFactoryCmdline(base({ kind: 'installer', extraArgs, meta: META }))).toBe(`${plain} nolapic`);
    const old = `talos.platform=metal console=tty0 ${DEFAULTS_LT_1_10}`;
    expect(buildFactoryCmdline(base({ kind: 'uki', version: v('1.9.0'), extraArgs, meta: META }))).toBe(old);
    expect(buildFactoryCmdline(base({ kind: 'installer', version: v('1.9.0'), extraArgs }))).toBe(old);
    expect(buildFactoryCmdline(base({ kind: 'uki', version: v('1.9.0'), secureboot: true, extraArgs, meta: META }))).toBe(
      `${old} lockdown=confidentiality nolapic`,
    );
    expect(buildFactoryCmdline(base({ kind: 'installer', version: v('1.10.0-alpha.0'), extraArgs }))).toBe(
      `talos.platform=metal console=tty0 ${DEFAULTS_1_10} nolapic`,
    );
  });
});

describe('META encoding', () => {
  test('vectors', () => {
    expect(metaEnvValue(META, v('1.11.0'))).toBe(`INSTALLER_META_BASE64=${META_VECTOR}`);
    expect(metaEnvValue(META, v('1.5.0'))).toBe(`INSTALLER_META_BASE64=${META_VECTOR}`);
    expect(metaEnvValue([{ key: 0xa, value: '{}' }], v('1.11.0'))).toBe('INSTALLER_META_BASE64=MHhhPXt9');
    expect(
      metaEnvValue(
        [
          { key: 0xc, value: 'hello' },
          { key: 0xd, value: 'world' },
        ],
        v('1.11.0'),
      ),
    ).toBe('INSTALLER_META_BASE64=MHhjPWhlbGxvOzB4ZD13b3JsZA==');
    expect(encodeMetaPayload([{ key: 0, value: '' }, { key: 255, value: 'x' }, { key: 16, value: 'a=b;c' }])).toBe('0x0=;0xff=x;0x10=a=b;c');
  });

  const big = [{ key: 0xa, value: 'x'.repeat(300) }];
  const bigRaw = `0xa=${'x'.repeat(300)}`;
  const decode = (env: string) => Buffer.from(env.replace(/^INSTALLER_META_BASE64=/, ''), 'base64');

  test('gzip only for ≥ 1.6.3 and > 256 raw bytes', () => {
    expect(decode(metaEnvValue(big, v('1.6.2'))).toString()).toBe(bigRaw);
    const gz = decode(metaEnvValue(big, v('1.6.3')));
    expect([...gz.subarray(0, 10)]).toEqual([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x02, 0xff]);
    expect(gunzipSync(gz).toString()).toBe(bigRaw);
    // prerelease of 1.6.3 counts as 1.6.3
    expect(decode(metaEnvValue(big, v('1.6.3-alpha.0')))[0]).toBe(0x1f);
    // exactly 256 bytes: not compressed
    const exact = [{ key: 0xa, value: 'y'.repeat(256 - 4) }];
    expect(encodeMetaPayload(exact)).toHaveLength(256);
    expect(decode(metaEnvValue(exact, v('1.11.0'))).toString()).toBe(encodeMetaPayload(exact));
    // 257 bytes: compressed
    const over = [{ key: 0xa, value: 'y'.repeat(253) }];
    expect(decode(metaEnvValue(over, v('1.11.0')))[0]).toBe(0x1f);
    // byte length, not string length, decides
    const utf8 = [{ key: 0xa, value: 'é'.repeat(130) }];
    expect(encodeMetaPayload(utf8).length).toBeLessThan(256);
    expect(gunzipSync(decode(metaEnvValue(utf8, v('1.11.0')))).toString()).toBe(encodeMetaPayload(utf8));
  });

  test('META in a cmdline past the gzip threshold', () => {
    const out = buildCmdline(base({ meta: big }));
    const m = /talos\.environment=INSTALLER_META_BASE64=(\S+)$/.exec(out);
    expect(m).not.toBeNull();
    expect(gunzipSync(Buffer.from(m![1], 'base64')).toString()).toBe(bigRaw);
  });
});

describe('resetCmdline', () => {
  test('appends the wipe argument', () => {
    expect(resetCmdline('talos.platform=metal console=tty0', 'iso')).toBe('talos.platform=metal console=tty0 talos.experimental.wipe=system');
    expect(resetCmdline('talos.platform=metal', 'image')).toBe('talos.platform=metal talos.experimental.wipe=system:EPHEMERAL,STATE');
    expect(resetCmdline('talos.platform=metal', 'installer')).toBe('talos.platform=metal talos.experimental.wipe=system:EPHEMERAL,STATE');
  });
});

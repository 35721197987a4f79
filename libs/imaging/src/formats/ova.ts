/**
 * OVA packaging (talos-formats §8.1): an uncompressed ustar archive of `disk.ovf`, `disk.mf`, `disk.vmdk` (in that
 * order), with fixed mtime, uid/gid 0 and mode 0644. The OVF below is this project's own text describing the VM
 * the upstream factory describes: virtual hardware vmx-15, 2 vCPUs, 2048 MB RAM, one paravirtual SCSI controller
 * with the stream-optimized disk, one VMXNET3 adapter on "VM Network", OVF properties delivered through VMware
 * guestinfo (property `talos.config` -> `guestinfo.talos.config`) and `disk.EnableUUID = TRUE`.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { OutputFile } from './scan';
import { BLOCK, tarPadding, ustarBlock } from '@factory/archive';
import { TAR_MTIME } from './tar';

export interface OvfParams {
  /** Size in bytes of disk.vmdk. */
  vmdkSize: number;
  /** Virtual disk capacity in MiB. */
  capacityMiB: number;
}

/** The OVF descriptor (deterministic text; only the two sizes vary). */
export function renderOvf(p: OvfParams): string {
  const int = (n: number, what: string) => {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`ovf: invalid ${what} ${n}`);
    return String(n);
  };
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
          xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
          xmlns:vmw="http://www.vmware.com/schema/ovf"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:id="talos-disk-file" ovf:href="disk.vmdk" ovf:size="${int(p.vmdkSize, 'vmdk size')}"/>
  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
    <Disk ovf:diskId="talos-disk" ovf:fileRef="talos-disk-file" ovf:capacity="${int(p.capacityMiB, 'capacity')}" ovf:capacityAllocationUnits="byte * 2^20" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>Logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>Network of the first adapter</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="talos">
    <Info>Talos Linux virtual machine</Info>
    <Name>talos</Name>
    <OperatingSystemSection ovf:id="101" vmw:osType="other3xLinux64Guest">
      <Info>Guest operating system</Info>
      <Description>Talos Linux (64-bit)</Description>
    </OperatingSystemSection>
    <ProductSection ovf:required="false">
      <Info>Talos Linux settings</Info>
      <Product>Talos Linux</Product>
      <Vendor>Sidero Labs</Vendor>
      <Property ovf:key="talos.config" ovf:type="string" ovf:userConfigurable="true" ovf:value="">
        <Label>Talos machine configuration</Label>
        <Description>Machine configuration for Talos, base64-encoded (read from guestinfo.talos.config).</Description>
      </Property>
    </ProductSection>
    <VirtualHardwareSection ovf:transport="com.vmware.guestInfo">
      <Info>Virtual hardware</Info>
      <System>
        <vssd:ElementName>Virtual hardware family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>talos</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-15</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Virtual CPUs</rasd:Description>
        <rasd:ElementName>2 virtual CPUs</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory</rasd:Description>
        <rasd:ElementName>2048 MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>2048</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:Description>Boot disk</rasd:Description>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/talos-disk</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:Description>VMXNET3 adapter on "VM Network"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <vmw:ExtraConfig ovf:required="false" vmw:key="disk.EnableUUID" vmw:value="TRUE"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`;
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const b of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(b as Buffer);
  return h.digest('hex');
}

/** `disk.mf`: SHA-256 of the vmdk, then of the OVF. */
export function renderManifest(vmdkSha256: string, ovfSha256: string): string {
  return `SHA256(disk.vmdk)= ${vmdkSha256}\nSHA256(disk.ovf)= ${ovfSha256}\n`;
}

/** ustar header of an OVA member: mode 0644, fixed mtime, device fields left NUL; sizes past 8 GiB in base-256. */
const ovaMemberHeader = (name: string, size: number) => ustarBlock({ name, mode: 0o644, size, mtime: TAR_MTIME, type: '0' });

/** Write the OVA archive for an existing stream-optimized `vmdk` into `out`. */
export async function writeOva(vmdk: string, capacityMiB: number, out: OutputFile): Promise<void> {
  const vmdkSize = (await fs.promises.stat(vmdk)).size;
  const ovf = Buffer.from(renderOvf({ vmdkSize, capacityMiB }), 'utf8');
  const mf = Buffer.from(renderManifest(await sha256File(vmdk), createHash('sha256').update(ovf).digest('hex')), 'utf8');
  for (const [name, data] of [
    ['disk.ovf', ovf],
    ['disk.mf', mf],
  ] as const) {
    await out.write(ovaMemberHeader(name, data.length));
    await out.write(data);
    await out.write(tarPadding(data.length));
  }
  await out.write(ovaMemberHeader('disk.vmdk', vmdkSize));
  let copied = 0;
  for await (const b of fs.createReadStream(vmdk, { highWaterMark: 1 << 20 })) {
    copied += (b as Buffer).length;
    await out.write(b as Buffer);
  }
  if (copied !== vmdkSize) throw new Error('ova: vmdk changed while archiving');
  await out.write(tarPadding(vmdkSize));
  await out.write(Buffer.alloc(2 * BLOCK));
}


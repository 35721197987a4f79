#!/usr/bin/env bash
# The floor for a cold metal-amd64.iso (hybrid, Talos >= 1.10): the external tool steps the factory's build runs,
# invoked directly on the same cached inputs, with no queue, storage or HTTP in between.
# usage: iso-floor.sh <imager dir usr/install/amd64> <work dir> <extension dir>...
# With FLOOR_OUTPUT=disk the same initramfs and UKI go into a dual-boot metal-amd64.raw.xz instead (bench/disk-images).
set -euo pipefail
IMG=$1; W=$2; shift 2
rm -rf "$W"; mkdir -p "$W/stage/usr/lib/firmware" "$W/micro/kernel/x86/microcode" "$W/mods"
E=1559424892
i=0
for ext in "$@"; do
  # microcode and firmware leave the extension; the rest becomes a squashfs layer
  if [ -d "$ext/rootfs/usr/lib/firmware/intel-ucode" ]; then cat "$ext"/rootfs/usr/lib/firmware/intel-ucode/* >> "$W/micro/kernel/x86/microcode/GenuineIntel.bin"; fi
  mkdir -p "$W/ext$i"; cp -a "$ext/rootfs" "$W/ext$i/"
  if [ -d "$W/ext$i/rootfs/usr/lib/firmware" ]; then cp -a "$W/ext$i/rootfs/usr/lib/firmware/." "$W/stage/usr/lib/firmware/"; rm -rf "$W/ext$i/rootfs/usr/lib/firmware"/*; fi
  mksquashfs "$W/ext$i/rootfs" "$W/stage/$i.sqsh" -comp zstd -Xcompression-level 18 -all-root -noappend -no-progress -no-xattrs -mkfs-time $E -all-time $E >/dev/null
  i=$((i+1))
done
rm -rf "$W/stage/usr/lib/firmware/intel-ucode"
# depmod over the base rootfs modules plus extension modules
zstd -dc "$IMG/initramfs.xz" | (cd "$W/mods" && cpio -id --quiet rootfs.sqsh 2>/dev/null || true)
unsquashfs -no-xattrs -d "$W/mods/root" -f -n "$W/mods/rootfs.sqsh" usr/lib/modules >/dev/null
KVER=$(ls "$W/mods/root/usr/lib/modules")
for ext in "$@"; do [ -d "$ext/rootfs/usr/lib/modules/$KVER" ] && cp -a "$ext/rootfs/usr/lib/modules/$KVER/." "$W/mods/root/usr/lib/modules/$KVER/"; done
echo "search extras built-in" > "$W/depmod.conf"
depmod --all --basedir "$W/mods/root/usr" --config "$W/depmod.conf" "$KVER"
mkdir -p "$W/modsdep/usr/lib/modules/$KVER"; cp "$W/mods/root/usr/lib/modules/$KVER"/modules.* "$W/modsdep/usr/lib/modules/$KVER/"
mksquashfs "$W/modsdep" "$W/stage/modules.dep.sqsh" -comp zstd -Xcompression-level 18 -all-root -noappend -no-progress -no-xattrs -mkfs-time $E -all-time $E >/dev/null
printf 'layers: []\n' > "$W/stage/extensions.yaml"
find "$W/stage" "$W/micro" -exec touch -h -d @$E {} +
(cd "$W/micro" && find kernel | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet -R +0:+0) > "$W/micro.cpio"
(cd "$W/stage" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet -R +0:+0) | zstd -18 -T1 -q -c > "$W/app.zst"
cat "$W/micro.cpio" "$IMG/initramfs.xz" "$W/app.zst" > "$W/initramfs.xz"
# UKI with objcopy: sections after the stub's last one, aligned
printf 'NAME="Talos"\n' > "$W/osrel"; printf 'talos.platform=metal console=tty0' > "$W/cmdline"
align=$(objdump -p "$IMG/systemd-stub.efi" | awk '/SectionAlignment/ {print $2}')
last=$(objdump -h "$IMG/systemd-stub.efi" | awk 'NF==7 && $1 ~ /^[0-9]+$/ {print $3, $4}' | tail -1)
off=$(( 16#$(echo "$last" | cut -d' ' -f2) + 16#$(echo "$last" | cut -d' ' -f1) ))
next() { local a=$((16#$align)); echo $(( (($1 + a - 1) / a) * a )); }
args=(); for s in osrel:osrel cmdline:cmdline initrd:initramfs.xz linux:$IMG/vmlinuz; do
  n=${s%%:*}; f=${s#*:}; [ -f "$f" ] || f="$W/$f"; off=$(next $off)
  args+=(--add-section ".$n=$f" --change-section-vma ".$n=$(printf '0x%x' $off)"); off=$((off + $(stat -c %s "$f")))
done
objcopy "${args[@]}" "$IMG/systemd-stub.efi" "$W/uki.efi"
if [ "${FLOOR_OUTPUT:-iso}" = disk ]; then
  # dual-boot metal disk, Talos >= 1.11: EFI 2101 MiB, BIOS 1 MiB, BOOT 2000 MiB, META 1 MiB (4247 MiB in all)
  D="$W/disk.raw"; truncate -s 4247M "$D"
  sgdisk -Z -U d92d45b3-cde9-8760-be9f-a2a71fac8d11 -n 1:2048:+2101M -t 1:ef00 -c 1:EFI -n 2:0:+1M -t 2:ef02 -c 2:BIOS \
    -n 3:0:+2000M -t 3:8300 -c 3:BOOT -n 4:0:+1M -t 4:8300 -c 4:META "$D" >/dev/null
  mkfs.vfat -C -F 32 -n EFI --invariant "$W/esp.img" $((2101 * 1024)) >/dev/null
  mmd -i "$W/esp.img" ::/EFI ::/EFI/boot ::/EFI/Linux ::/loader
  mcopy -i "$W/esp.img" "$IMG/systemd-boot.efi" ::/EFI/boot/BOOTX64.efi; mcopy -i "$W/esp.img" "$W/uki.efi" ::/EFI/Linux/Talos.efi
  printf 'timeout 10\n' > "$W/loader.conf"; mcopy -i "$W/esp.img" "$W/loader.conf" ::/loader/
  mkdir -p "$W/boot/A" "$W/boot/grub"; cp "$IMG/vmlinuz" "$W/initramfs.xz" "$W/boot/A/"; printf 'linux /A/vmlinuz\n' > "$W/boot/grub/grub.cfg"
  printf '/dev/null\n0 0\nd--755 0 0\nA d--755 0 0\nvmlinuz ---644 0 0 %s\ninitramfs.xz ---644 0 0 %s\n$\ngrub d--755 0 0\ngrub.cfg ---600 0 0 %s\n$\n$\n' "$W/boot/A/vmlinuz" "$W/boot/A/initramfs.xz" "$W/boot/grub/grub.cfg" > "$W/proto"
  truncate -s 2000M "$W/boot.img"; mkfs.xfs -q -f -L BOOT -p "$W/proto" "$W/boot.img"
  grub-mkimage -O i386-pc -p '(hd0,gpt3)/grub' -o "$W/core.img" biosdisk part_gpt part_msdos xfs normal configfile linux search
  dd if=/usr/lib/grub/i386-pc/boot.img of="$D" bs=446 count=1 conv=notrunc 2>/dev/null
  dd if="$W/esp.img" of="$D" bs=1M seek=1 conv=notrunc,sparse 2>/dev/null
  dd if="$W/core.img" of="$D" bs=1M seek=2102 conv=notrunc,sparse 2>/dev/null
  dd if="$W/boot.img" of="$D" bs=1M seek=2103 conv=notrunc,sparse 2>/dev/null
  xz -0 -T1 -c "$D" > "$W/out.raw.xz"
  ls -l "$W/out.raw.xz" | awk '{print "floor disk.raw.xz bytes:", $5}'
  exit 0
fi
# hybrid ISO: GRUB BIOS + sd-boot/UKI on an appended ESP
mkdir -p "$W/iso/boot/grub" "$W/iso/EFI/BOOT" "$W/iso/EFI/Linux" "$W/iso/loader"
cp "$IMG/vmlinuz" "$W/iso/boot/vmlinuz"; cp "$W/initramfs.xz" "$W/iso/boot/initramfs.xz"
printf 'linux /boot/vmlinuz\ninitrd /boot/initramfs.xz\nboot\n' > "$W/iso/boot/grub/grub.cfg"
printf 'search --no-floppy --set=root --file /boot/grub/grub.cfg\nset prefix=($root)/boot/grub\n' > "$W/early.cfg"
MODS="iso9660 normal linux configfile search search_fs_file test all_video"
grub-mkimage -O i386-pc-eltorito -c "$W/early.cfg" -p /boot/grub -o "$W/iso/boot/grub/eltorito.img" biosdisk $MODS
cp "$IMG/systemd-boot.efi" "$W/iso/EFI/BOOT/BOOTX64.EFI"; cp "$W/uki.efi" "$W/iso/EFI/Linux/Talos.efi"
printf 'timeout 10\n' > "$W/iso/loader/loader.conf"
mkfs.vfat -C --invariant -i 12345678 -n EFI "$W/efi.img" $((34 * 1024)) >/dev/null
mmd -i "$W/efi.img" ::/EFI ::/EFI/BOOT ::/EFI/Linux ::/loader
mcopy -i "$W/efi.img" "$W/iso/EFI/BOOT/BOOTX64.EFI" ::/EFI/BOOT/; mcopy -i "$W/efi.img" "$W/uki.efi" ::/EFI/Linux/Talos.efi; mcopy -i "$W/efi.img" "$W/iso/loader/loader.conf" ::/loader/
xorriso -as mkisofs -o "$W/out.iso" -R -J -V TALOS --set_all_file_dates "=$E" \
  -b boot/grub/eltorito.img -no-emul-boot -boot-load-size 4 -boot-info-table --grub2-boot-info \
  --grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img -eltorito-alt-boot -e --interval:appended_partition_2:all:: -no-emul-boot \
  -append_partition 2 0xef "$W/efi.img" -appended_part_as_gpt "$W/iso" 2>/dev/null
ls -l "$W/out.iso" | awk '{print "floor ISO bytes:", $5}'

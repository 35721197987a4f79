/** GRUB configuration syntax shared by the ISO and disk-image grub.cfg writers. */

/** GRUB escaping of a kernel command line inside grub.cfg: `\ { } & $ | ; < > "` get a backslash. */
export function grubEscape(s: string): string {
  return s.replace(/[\\{}&$|;<>"]/g, (c) => `\\${c}`);
}

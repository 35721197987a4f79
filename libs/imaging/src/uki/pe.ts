/** The PE/COFF reader lives in @factory/authenticode (which also hashes and signs PE images); the UKI writer uses it from there. */
export {
  alignUp,
  COFF_HEADER_SIZE,
  DATA_DIRECTORY_SECURITY,
  IMAGE_SCN_CNT_CODE,
  IMAGE_SCN_CNT_INITIALIZED_DATA,
  IMAGE_SCN_CNT_UNINITIALIZED_DATA,
  IMAGE_SCN_MEM_READ,
  MACHINE_AMD64,
  MACHINE_ARM64,
  numberOfRvaAndSizesOffset,
  OPT,
  parsePe,
  PE32_MAGIC,
  PE32PLUS_MAGIC,
  peSectionData,
  peSectionsNamed,
  SECTION_HEADER_SIZE,
  UKI_PE_OFFSET,
  UKI_SECTION_CHARACTERISTICS,
} from '@factory/authenticode';
export type { PeDataDirectory, PeInfo, PeSection } from '@factory/authenticode';

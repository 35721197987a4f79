/**
 * What every recipe gets: the upstream inputs it may pull, the factory's OCI store, and the resolved profile with
 * the imager files of its version. Recipes trust the profile (the edge validated it) and only build.
 */
import type { Readable } from 'node:stream';
import type { AssetProfile, OciDescriptor } from '@factory/asset';
import type { UpstreamCatalog } from '@factory/catalog';
import type { FileDigest } from '@factory/imaging';
import type { OciContentStore } from '@factory/registry';
import type { SemVer } from '@factory/talos';
import type { ImagerFiles, InputCache } from '../inputs';
import type { SecureBootSigner } from '../secureboot';
import type { ResolvedOverlay } from './overlay';

export interface BuildContext {
  catalog: UpstreamCatalog;
  inputs: InputCache;
  /** the factory's own OCI content (installer image blobs go there as they are built) */
  oci: OciContentStore;
  externalUrl: string;
  progress(stage: string, percent: number): void;
  /** Builders that hash their output on the way compute its MD5 too (S3 stores record it; see the processor). */
  md5?: boolean;
  /**
   * Builders whose output declares its final size while it is being written (GPT ISOs) hand its bytes here as they
   * are written: the processor stores them meanwhile (see BuiltFile.streamed). `body` fails if the build does.
   */
  storeWhileWritten?: (size: number, body: Readable) => Promise<void>;
  /** Secure Boot signatures from the signing service (required by `-secureboot` outputs only); recipes never see a key */
  secureBoot?: SecureBootSigner;
}

/** Everything one build has resolved before the output-specific steps run. */
export interface BuildJob {
  ctx: BuildContext;
  profile: AssetProfile;
  version: SemVer;
  overlay: ResolvedOverlay | undefined;
  imager: ImagerFiles;
  workDir: string;
  /** where the recipe writes its output when it makes a new file */
  out: string;
}

/** A built asset: its file, and its digest when the builder computed it on the way. */
export interface BuiltFile {
  file: string;
  digest?: FileDigest;
  /** installer tarballs: the same image as a manifest whose blobs are already in the OCI store */
  image?: OciDescriptor;
  /** Its bytes were stored while it was written (BuildContext.storeWhileWritten), exactly those `digest` describes. */
  streamed?: boolean;
}

export type Recipe = (job: BuildJob) => Promise<BuiltFile>;

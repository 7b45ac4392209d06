// Uppy 5 (`@uppy/core` 5.2.0 + `@uppy/aws-s3` 5.1.0) as the bench drives it: the
// multipart upload is created and completed by the signer (server side, as with
// Companion) and each part URL is presigned by it; parts go in parallel. Bundled by
// bench/peers.mjs into window.benchUppy.
import AwsS3 from "@uppy/aws-s3";
import Uppy from "@uppy/core";
import { driveUppy, signer } from "../drive.js";

window.benchUppy = ({ file, key, partSize, concurrency }) => driveUppy({ Uppy, AwsS3, file, partSize, concurrency }, (partsDone) => ({
  createMultipartUpload: () => signer("create", { key }),
  signPart: (_file, { uploadId, partNumber }) => signer("sign-part", { key, uploadId, partNumber }),
  listParts: (_file, { uploadId }) => signer("list-parts", { key, uploadId }),
  abortMultipartUpload: (_file, { uploadId }) => signer("abort", { key, uploadId }),
  completeMultipartUpload: (_file, { uploadId, parts }) => {
    partsDone();
    return signer("complete", { key, uploadId, parts });
  },
}));

// Uppy 5 (`@uppy/core` 5.2.0 + `@uppy/aws-s3` 5.1.0) as the bench drives it: multipart
// with the part size and parts in flight of the other entries; the multipart upload is
// created and completed by the signer (server side, as with Companion) and each part
// URL is presigned by it. Bundled by bench/peers.mjs into window.benchUppy.
import AwsS3 from "@uppy/aws-s3";
import Uppy from "@uppy/core";
import { signer, timeUpload } from "../signer-client.js";

window.benchUppy = async ({ file, key, partSize, concurrency }) => {
  let partsDone = () => {};
  const uppy = new Uppy({ autoProceed: false });
  uppy.use(AwsS3, {
    shouldUseMultipart: true,
    limit: concurrency,
    getChunkSize: () => partSize,
    createMultipartUpload: () => signer("create", { key }),
    signPart: (_file, { uploadId, partNumber }) => signer("sign-part", { key, uploadId, partNumber }),
    listParts: (_file, { uploadId }) => signer("list-parts", { key, uploadId }),
    abortMultipartUpload: (_file, { uploadId }) => signer("abort", { key, uploadId }),
    completeMultipartUpload: (_file, { uploadId, parts }) => {
      partsDone();
      return signer("complete", { key, uploadId, parts });
    },
  });
  uppy.addFile({ name: file.name, type: file.type, data: file, source: "bench" });
  try {
    return await timeUpload(uppy, (mark) => { partsDone = mark; });
  } finally {
    uppy.destroy();
  }
};

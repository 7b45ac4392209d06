// Uppy latest (`@uppy/core` + `@uppy/aws-s3` 6.x) as the bench drives it: multipart
// with the part size of the other entries and `limit` = parts in flight (which 6.x
// applies to files, not parts: one file's parts go one at a time, upstream #6547).
// Every S3 request, Create and Complete included, is presigned by the bench's signer
// and sent by the browser. Bundled by bench/peers.mjs into window.benchUppy.
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
    generateObjectKey: () => key,
    signRequest: (request) => {
      const { method, uploadId, partNumber } = request;
      if (method === "POST" && uploadId) partsDone(); // CompleteMultipartUpload
      return signer("presign", { method, key: request.key, uploadId, partNumber });
    },
  });
  uppy.addFile({ name: file.name, type: file.type, data: file, source: "bench" });
  try {
    return await timeUpload(uppy, (mark) => { partsDone = mark; });
  } finally {
    uppy.destroy();
  }
};

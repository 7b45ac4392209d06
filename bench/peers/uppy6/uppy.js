// Uppy latest (`@uppy/core` + `@uppy/aws-s3` 6.x) as the bench drives it: every S3
// request, Create and Complete included, is presigned by the signer and sent by the
// browser. `limit` applies to files in 6.x, not parts: one file's parts go one at a
// time (upstream #6547). Bundled by bench/peers.mjs into window.benchUppy.
import AwsS3 from "@uppy/aws-s3";
import Uppy from "@uppy/core";
import { driveUppy, signer } from "../drive.js";

window.benchUppy = ({ file, key, partSize, concurrency }) => driveUppy({ Uppy, AwsS3, file, partSize, concurrency }, (partsDone) => ({
  generateObjectKey: () => key,
  signRequest: (request) => {
    const { method, uploadId, partNumber } = request;
    if (method === "POST" && uploadId) partsDone(); // CompleteMultipartUpload
    return signer("presign", { method, key: request.key, uploadId, partNumber });
  },
}));

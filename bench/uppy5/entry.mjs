// Uppy 5's classic S3 multipart plugin (@uppy/aws-s3 5.1.0) driven through its documented hooks, which the bench
// page points at our presign service. Parts of one file go in parallel up to `limit`.
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";

export function upload(file, { partSize, concurrency, create, sign, list, complete, abort }) {
  return new Promise((resolve, reject) => {
    const uppy = new Uppy({ autoProceed: false });
    uppy.use(AwsS3, {
      shouldUseMultipart: true,
      limit: concurrency,
      getChunkSize: () => partSize,
      createMultipartUpload: (f) => create(f.data),
      signPart: async (_f, { uploadId, partNumber }) => ({ method: "PUT", url: await sign(uploadId, partNumber) }),
      listParts: (_f, { uploadId }) => list(uploadId),
      completeMultipartUpload: async (_f, { uploadId, parts }) => { await complete(uploadId, parts); return {}; },
      abortMultipartUpload: (_f, { uploadId }) => abort(uploadId),
    });
    uppy.on("complete", (result) => {
      if (result.failed && result.failed.length) reject(new Error(`uppy5: ${result.failed[0].error}`));
      else resolve();
    });
    uppy.on("upload-error", (_f, error) => reject(error));
    uppy.addFile({ name: file.name, type: file.type || "application/octet-stream", data: file });
    uppy.upload().catch(reject);
  });
}

// Uppy 6's S3 plugin (@uppy/aws-s3 6.x) with its documented client-side signing (`getCredentials` + `s3Endpoint`)
// against the same bucket. It uploads the parts of one file one at a time; `limit` counts files.
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";

export function upload(file, { partSize, concurrency, endpoint, bucket, region, accessKeyId, secretAccessKey }) {
  return new Promise((resolve, reject) => {
    const uppy = new Uppy({ autoProceed: false });
    uppy.use(AwsS3, {
      s3Endpoint: `${endpoint}/${bucket}`,
      region,
      getCredentials: async () => ({ credentials: { accessKeyId, secretAccessKey, sessionToken: "" }, region }),
      shouldUseMultipart: true,
      getChunkSize: () => partSize,
      limit: concurrency,
    });
    uppy.on("complete", (result) => {
      if (result.failed && result.failed.length) reject(new Error(`uppy6: ${result.failed[0].error}`));
      else resolve();
    });
    uppy.on("upload-error", (_f, error) => reject(error));
    uppy.addFile({ name: file.name, type: file.type || "application/octet-stream", data: file });
    uppy.upload().catch(reject);
  });
}

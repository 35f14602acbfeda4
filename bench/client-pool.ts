/** Runs `count` jobs with at most `inflight` at once, in index order. */
export async function pool(count: number, inflight: number, job: (i: number) => Promise<void>) {
  let next = 0
  let failed: unknown = null
  const worker = async () => {
    while (next < count && !failed) {
      const i = next++
      try {
        await job(i)
      } catch (error) {
        failed ??= error
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(inflight, count) }, worker))
  if (failed) throw failed
}

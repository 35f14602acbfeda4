// The folder page's uploader: stock Dropzone with chunked, parallel, retried and resumable uploads.
/* global Dropzone, htmx */
Dropzone.autoDiscover = false

const form = document.getElementById('dropzone')
if (form) setUpUploader(form)

/**
 * The same file (name, size, modification time) dropped into the same folder gets the same
 * upload id, so dropping it again after a failure, a closed tab or a server restart finds the
 * chunks the server already holds.
 */
function resumeKey(folder, file) {
  const text = `${folder}\u0000${file.name}\u0000${file.size}\u0000${file.lastModified}`
  // Two independent 53-bit hashes (cyrb53): ample to tell one person's files apart.
  const hash = (seed) => {
    let h1 = 0xdeadbeef ^ seed
    let h2 = 0x41c6ce57 ^ seed
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 2654435761)
      h2 = Math.imul(h2 ^ c, 1597334677)
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
    return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36)
  }
  return `r-${hash(1)}-${hash(2)}`
}

/** Refusals that will not change on retry: a bad request, too large, gone, no space. */
function isPermanent(status) {
  // 408 timeout, 423 "this chunk is being received already", 429 slow down: worth another try.
  return (status >= 400 && status < 500 && ![408, 423, 429].includes(status)) || status === 507
}

function formatBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let unit = 0
  while (bytes >= 1000 && unit < units.length - 1) {
    bytes /= 1000
    unit++
  }
  return `${bytes.toFixed(unit === 0 || bytes >= 10 ? 0 : 1)} ${units[unit]}`
}

function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return '…'
  if (seconds < 60) return `${Math.ceil(seconds)} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`
  return `${Math.floor(seconds / 3600)} h ${Math.ceil((seconds % 3600) / 60)} min`
}

function setUpUploader(form) {
  const folder = form.dataset.folder
  const chunkSize = Number(form.dataset.chunkSize)
  // The admin's page and a drop link's page post to different endpoints.
  const uploadUrl = form.dataset.uploadUrl || `/upload?folder=${encodeURIComponent(folder)}`
  const statusUrl = (key) => `${form.dataset.statusUrl || '/upload/'}${encodeURIComponent(key)}`
  const summary = document.getElementById('upload-summary')
  // Bytes that really crossed the network (chunks the server already held are not sent).
  let sentOnNetwork = 0
  let samples = []
  const dropzone = new Dropzone(form, {
    url: uploadUrl,
    acceptedFiles: form.dataset.acceptedFiles || null,
    paramName: 'file',
    chunking: true,
    forceChunking: true,
    parallelChunkUploads: true,
    retryChunks: true,
    retryChunksLimit: 8,
    chunkSize,
    maxFilesize: Number(form.dataset.maxFileSize) / (1024 * 1024),
    parallelUploads: 3,
    // The request that completes a file also hashes it; big files need longer than any fixed timeout.
    timeout: 0,
    headers: { Accept: 'application/json' },
    accept(file, done) {
      findResumableUpload(file).then(() => done(), () => done())
    },
    // Whichever chunk finished last, ask the server for the file it stored.
    chunksUploaded(file, done) {
      fetch(statusUrl(file.upload.uuid), { headers: { Accept: 'application/json' } })
        .then((response) => response.json())
        .then((status) => {
          file.stored = status.file
          if (status.upload && status.upload.state === 'complete') done()
          else dropzone._errorProcessing([file], status.error || (status.upload && status.upload.error) || 'The server could not store the file')
        })
        .catch(() => dropzone._errorProcessing([file], 'Lost contact with the server while finishing the upload'))
    },
  })

  async function findResumableUpload(file) {
    // A file added again (Retry) must not keep what an earlier attempt learnt about the server.
    file.resume = undefined
    const key = resumeKey(folder, file)
    const response = await fetch(statusUrl(key), { headers: { Accept: 'application/json' } })
    if (response.status === 404) {
      file.upload.uuid = key
      return
    }
    if (!response.ok) return
    const status = await response.json()
    const sameChunking = status.upload.totalBytes === file.size && status.upload.chunkBytes === chunkSize
    // A finished (or abandoned) upload of this file is not resumed: this drop is a new upload.
    if (status.upload.state !== 'receiving' || !sameChunking) return
    file.upload.uuid = key
    file.resume = { held: new Set(status.chunks), bytes: status.upload.receivedBytes }
    if (status.chunks.length > 0) {
      const percent = Math.floor((100 * status.upload.receivedBytes) / Math.max(1, status.upload.totalBytes))
      note(file, `Resuming at ${percent}% (${formatBytes(status.upload.receivedBytes)} already on the server)`)
    }
  }

  // Sizes in the previews read like the ones in the file list (numbers and units only: safe as HTML).
  dropzone.filesize = (bytes) => {
    const [number, unit] = formatBytes(bytes).split(' ')
    return `<strong>${number}</strong> ${unit}`
  }

  // Chunks the server already holds are marked done instead of being sent again.
  const uploadData = dropzone._uploadData.bind(dropzone)
  dropzone._uploadData = (files, dataBlocks) => {
    const file = files[0]
    const index = dataBlocks[0].chunkIndex
    if (!file.upload.chunked || !file.resume || !file.resume.held.has(index)) return uploadData(files, dataBlocks)
    const chunk = file.upload.chunks[index]
    const skipped = { responseText: '', getAllResponseHeaders: () => '' }
    chunk.xhr = skipped
    chunk.total = dataBlocks[0].data.size
    chunk.bytesSent = chunk.total
    queueMicrotask(() => {
      dropzone._updateFilesUploadProgress(files, skipped)
      file.upload.finishedChunkUpload(chunk, '')
    })
  }

  // Retry transient failures after a growing pause (a dropped connection needs time to come
  // back); a refusal such as "too large" or "no space" is shown at once instead.
  dropzone._handleUploadError = function (files, xhr, response) {
    const file = files[0]
    if (file.status === Dropzone.CANCELED || file.status === Dropzone.ERROR) return
    if (file.upload.chunked && !isPermanent(xhr.status)) {
      const chunk = this._getChunk(file, xhr)
      if (chunk && chunk.retries < this.options.retryChunksLimit) {
        const delay = Math.min(30_000, 500 * 2 ** chunk.retries++)
        const attempt = file.upload
        setTimeout(() => {
          // Not if the file failed meanwhile, nor into a later attempt (Retry) of the same file.
          if (file.status === Dropzone.UPLOADING && file.upload === attempt) this._uploadData(files, [chunk.dataBlock])
        }, delay)
        return
      }
    }
    const message = response && (response.error || (typeof response === 'string' && response))
    this._errorProcessing(files, message || (xhr.status ? `The server answered ${xhr.status}` : 'The connection to the server failed'), xhr)
  }

  dropzone.on('success', (file, response) => {
    const stored = file.stored || (response && (response.file || (response.files && response.files[0])))
    if (!stored) return
    if (!stored.url) {
      note(file, `Received as “${stored.name}”`)
      return
    }
    const link = document.createElement('a')
    link.href = stored.url
    link.textContent = `Stored as “${stored.name}” — download`
    note(file, link)
  })

  dropzone.on('error', (file) => {
    if (file.accepted === false || !file.previewElement) return
    const retry = document.createElement('button')
    retry.type = 'button'
    retry.className = 'retry'
    retry.textContent = 'Retry'
    retry.addEventListener('click', (event) => {
      event.stopPropagation()
      // Chunks of the failed attempt still on their way would report into the new attempt.
      for (const chunk of file.upload.chunks || []) if (chunk && chunk.xhr && chunk.xhr.abort) chunk.xhr.abort()
      dropzone.removeFile(file)
      file.status = undefined
      dropzone.addFile(file)
    })
    note(file, retry)
  })

  dropzone.on('sending', (file, xhr) => {
    let loaded = 0
    xhr.upload.addEventListener('progress', (event) => {
      sentOnNetwork += Math.max(0, event.loaded - loaded)
      loaded = event.loaded
    })
  })

  /** Bytes of the file that are on the server or on their way (skipped chunks count as done). */
  function bytesDone(file) {
    if (file.status === Dropzone.SUCCESS) return file.size
    let done = 0
    for (const chunk of (file.upload && file.upload.chunks) || []) {
      if (!chunk) continue
      const bytes = Math.min(chunkSize, file.size - chunk.index * chunkSize)
      done += chunk.status === Dropzone.SUCCESS ? bytes : Math.min(bytes, chunk.bytesSent || 0)
    }
    return done
  }

  // Overall progress, speed and time left. Dropzone's own total is no use with parallel chunks:
  // it adds up only the chunks already started, and is NaN until each has reported progress.
  dropzone.on('totaluploadprogress', () => {
    const files = dropzone.getActiveFiles()
    if (!summary || files.length === 0) return
    let total = 0
    let done = 0
    for (const file of files) {
      total += file.size
      done += bytesDone(file)
    }
    const now = performance.now()
    samples.push({ now, sent: sentOnNetwork })
    samples = samples.filter((s) => now - s.now < 5000)
    const first = samples[0]
    const speed = now > first.now ? ((sentOnNetwork - first.sent) * 1000) / (now - first.now) : 0
    const left = speed > 0 ? (total - done) / speed : Number.POSITIVE_INFINITY
    const percent = total > 0 ? Math.floor((100 * done) / total) : 100
    summary.textContent = `${percent}% · ${formatBytes(speed)}/s · ${formatDuration(left)} left`
  })
  dropzone.on('queuecomplete', () => {
    samples = []
    if (summary) summary.textContent = ''
    htmx.trigger(document.body, 'dropfold:uploaded')
  })

  function note(file, content) {
    if (!file.previewElement) return
    let status = file.previewElement.querySelector('.dz-status')
    if (!status) {
      status = document.createElement('div')
      status.className = 'dz-status'
      file.previewElement.append(status)
    }
    status.replaceChildren(content)
  }
}

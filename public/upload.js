// The folder page's uploader: stock Dropzone with chunked, parallel, retried uploads.
/* global Dropzone, htmx */
Dropzone.autoDiscover = false

const form = document.getElementById('dropzone')
if (form) {
  const folder = form.dataset.folder
  const dropzone = new Dropzone(form, {
    url: `/upload?folder=${encodeURIComponent(folder)}`,
    paramName: 'file',
    chunking: true,
    forceChunking: true,
    parallelChunkUploads: true,
    retryChunks: true,
    retryChunksLimit: 10,
    chunkSize: Number(form.dataset.chunkSize),
    maxFilesize: Number(form.dataset.maxFileSize) / (1024 * 1024),
    parallelUploads: 2,
    // The request that completes a file also hashes it; big files need longer than any fixed timeout.
    timeout: 0,
    headers: { Accept: 'application/json' },
    // Whichever chunk finished last, ask the server for the file it stored.
    chunksUploaded(file, done) {
      fetch(`/upload/${encodeURIComponent(file.upload.uuid)}`, { headers: { Accept: 'application/json' } })
        .then((response) => response.json())
        .then((status) => {
          file.stored = status.file
          if (status.upload?.state === 'complete') done()
          else dropzone._errorProcessing([file], status.error || status.upload?.error || 'The server could not store the file')
        })
        .catch(() => dropzone._errorProcessing([file], 'Lost contact with the server while finishing the upload'))
    },
  })

  dropzone.on('success', (file, response) => {
    const stored = file.stored || (response && (response.file || (response.files && response.files[0])))
    if (!stored || !file.previewElement) return
    const status = document.createElement('div')
    status.className = 'dz-status'
    const link = document.createElement('a')
    link.href = stored.url
    link.textContent = `Stored as “${stored.name}” — download`
    status.append(link)
    file.previewElement.append(status)
  })

  dropzone.on('queuecomplete', () => htmx.trigger(document.body, 'dropfold:uploaded'))
}

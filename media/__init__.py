"""File handling for evidence: check what pupils send, clean it, store it by its content.

 - `media.store`: the media directory (`MediaStore`), where a stored file lives
   (`relative_path_for`), and removing files nobody needs (after a delete, the orphan sweep).
 - `media.images`: the image pipeline (identify, guard against bombs, orient, strip, encode).
 - `media.sniffing`: what kind of file some bytes are, and under which type a file may be kept.
 - `media.metadata`: taking author, device, place and dates out of videos and documents, and
   what would act by itself out of PDFs (actions, JavaScript, embedded files) and Office files
   (links to outside; macros are refused); `media.video` walks the boxes of MP4/MOV/M4A files.
 - `media.refusals`: `MediaRefusedError` and its `RefusalReason`, which the chat translates.

Nothing here speaks Telegram. The rows of stored files, and the value types `StoredFile`,
`StoredImage` and `StoredVideo` the store hands back, are `storage.media_files`'.
"""

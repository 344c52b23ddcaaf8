//! DEFLATE over a stream (RFC 1951 raw deflate), for IMAP COMPRESS=DEFLATE
//! (RFC 4978) and any other protocol that negotiates compression.
//!
//! Reads inflate what arrives; writes deflate, and every flush ends with a
//! sync flush (RFC 4978 §4: each response must be decodable without waiting
//! for more), so the peer sees each reply as soon as it is flushed.
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Size of the compressed-side buffers. Small: an idle session should cost little.
const BUF: usize = 8 * 1024;

/// A stream with DEFLATE on both directions.
#[derive(Debug)]
pub struct DeflateStream<S> {
    inner: S,
    inflate: Decompress,
    deflate: Compress,
    /// Compressed bytes read from `inner`, not yet inflated: `in_buf[in_pos..in_len]`.
    in_buf: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    /// Compressed bytes produced, not yet written to `inner`: `out_buf[out_pos..]`.
    out_buf: Vec<u8>,
    out_pos: usize,
    /// Whether plaintext was written since the last sync flush.
    dirty: bool,
    /// Whether the last inflate filled the reader's buffer: the inflater may
    /// still hold output for input it has already consumed (a long match),
    /// so the next read must drain it before waiting for more input.
    out_full: bool,
}

impl<S> DeflateStream<S> {
    /// Wraps `inner`; both peers start their DEFLATE streams now.
    pub fn new(inner: S) -> Self {
        DeflateStream {
            inner,
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::fast(), false),
            in_buf: vec![0; BUF],
            in_pos: 0,
            in_len: 0,
            out_buf: Vec::with_capacity(BUF),
            out_pos: 0,
            dirty: false,
            out_full: false,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeflateStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.in_pos < this.in_len || this.out_full {
                let before_in = this.inflate.total_in();
                let before_out = this.inflate.total_out();
                let out = buf.initialize_unfilled();
                let room = out.len();
                let status = this
                    .inflate
                    .decompress(
                        &this.in_buf[this.in_pos..this.in_len],
                        out,
                        FlushDecompress::Sync,
                    )
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                this.in_pos += (this.inflate.total_in() - before_in) as usize;
                let produced = (this.inflate.total_out() - before_out) as usize;
                this.out_full = produced == room;
                buf.advance(produced);
                if produced > 0 {
                    return Poll::Ready(Ok(()));
                }
                if status == Status::StreamEnd {
                    return Poll::Ready(Ok(()));
                }
                if this.in_pos < this.in_len {
                    // Consumed input without output (headers, sync markers): go on.
                    continue;
                }
            }
            // Need more compressed input.
            this.in_pos = 0;
            this.in_len = 0;
            let mut rb = ReadBuf::new(&mut this.in_buf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(())); // EOF
            }
            this.in_len = n;
        }
    }
}

impl<S: AsyncWrite + Unpin> DeflateStream<S> {
    /// Writes out whatever compressed bytes are pending.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(crate::stream::poll_write_out(
            &mut self.inner,
            cx,
            &self.out_buf,
            &mut self.out_pos
        ))?;
        self.out_buf.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Compresses `input` (or, with `flush`, emits a sync flush) into `out_buf`.
    fn compress(&mut self, input: &[u8], flush: FlushCompress) -> io::Result<usize> {
        let mut consumed = 0;
        loop {
            if self.out_buf.capacity() - self.out_buf.len() < 64 {
                self.out_buf.reserve(BUF);
            }
            let before_in = self.deflate.total_in();
            self.deflate
                .compress_vec(&input[consumed..], &mut self.out_buf, flush)
                .map_err(io::Error::other)?;
            consumed += (self.deflate.total_in() - before_in) as usize;
            let full = self.out_buf.len() == self.out_buf.capacity();
            if consumed == input.len() && !full {
                return Ok(consumed);
            }
            if !full && flush == FlushCompress::None {
                return Ok(consumed);
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeflateStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out_buf.len() - this.out_pos >= BUF {
            ready!(this.poll_drain(cx))?;
        }
        let n = this.compress(buf, FlushCompress::None)?;
        this.dirty |= n > 0;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.dirty {
            this.compress(&[], FlushCompress::Sync)?;
            this.dirty = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn round_trip_with_flushes() {
        let (a, b) = tokio::io::duplex(64);
        let mut a = DeflateStream::new(a);
        let mut b = DeflateStream::new(b);
        let writer = tokio::spawn(async move {
            for i in 0..200 {
                a.write_all(format!("* {i} FETCH (FLAGS (\\Seen))\r\n").as_bytes())
                    .await
                    .unwrap();
                if i % 7 == 0 {
                    a.flush().await.unwrap();
                }
            }
            a.write_all(&vec![b'x'; 100_000]).await.unwrap();
            a.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        let text = String::from_utf8(got).unwrap();
        assert!(text.starts_with("* 0 FETCH (FLAGS (\\Seen))\r\n"));
        assert!(text.contains("* 199 FETCH"));
        assert!(text.ends_with(&"x".repeat(100_000)));
    }

    #[tokio::test]
    async fn output_held_by_the_inflater_is_read_without_more_input() {
        // A highly compressible reply: a few hundred compressed bytes that
        // inflate to more than one read buffer. The writer then waits, so
        // the reader must get the rest from the inflater, not the stream.
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut a = DeflateStream::new(a);
        let mut b = DeflateStream::new(b);
        a.write_all(&vec![b'y'; 20_000]).await.unwrap();
        a.flush().await.unwrap();
        let mut got = Vec::new();
        let mut chunk = [0; 4096];
        while got.len() < 20_000 {
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), b.read(&mut chunk))
                .await
                .expect("reader stalled with output pending in the inflater")
                .unwrap();
            assert!(n > 0, "end of stream after {} bytes", got.len());
            got.extend_from_slice(&chunk[..n]);
        }
        assert!(got.len() == 20_000 && got.iter().all(|&c| c == b'y'));
        drop(a);
    }
}

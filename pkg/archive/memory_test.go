package archive

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// makeTree creates dirs×files files of size random bytes under a new
// temporary directory.
func makeTree(tb testing.TB, dirs, files, size int) string {
	tb.Helper()
	root := tb.TempDir()
	content := make([]byte, size)
	for d := range dirs {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		for f := range files {
			rand.Read(content)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", f)), content, 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return root
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestMemoryBounded archives 6k files (6 MiB of incompressible content) and
// checks that the live heap does not grow between the first 1k files and
// the end: nothing may be kept per file or per byte. (Creating the files is
// most of the test's time; BenchmarkWrite goes to 20k files.)
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 6k files")
	}
	const dirs, files, size = 60, 100, 1 << 10
	root := makeTree(t, dirs, files, size)

	var early, late uint64
	st, err := Write(context.Background(), io.Discard, root, WithProgress(func(s Stats) {
		switch s.Files {
		case 1000:
			if early == 0 {
				early = heapInuse()
			}
		case dirs * files:
			late = heapInuse()
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != dirs*files || st.Bytes != dirs*files*size {
		t.Fatalf("stats %+v", st)
	}
	const slack = 512 << 10
	if late > early+slack {
		t.Errorf("heap grew from %d to %d bytes while archiving %d more files", early, late, dirs*files-1000)
	}
	t.Logf("heap in use: %d KiB after 1k files, %d KiB after %d files", early>>10, late>>10, dirs*files)
}

// BenchmarkWrite archives trees of incompressible files: many small ones
// and a few large ones. allocs/op and B/op grow with the number of entries
// (headers, directory listings) but not with file sizes, and peak-heap-MiB
// (sampled every 1000 files) stays flat as the tree grows; MB/s is
// uncompressed content.
func BenchmarkWrite(b *testing.B) {
	for _, tc := range []struct{ dirs, files, size int }{
		{10, 100, 1 << 10},
		{100, 200, 1 << 10},
		{5, 10, 4 << 20},
	} {
		b.Run(fmt.Sprintf("files=%d/size=%d", tc.dirs*tc.files, tc.size), func(b *testing.B) {
			root := makeTree(b, tc.dirs, tc.files, tc.size)
			b.ReportAllocs()
			b.SetBytes(int64(tc.dirs * tc.files * tc.size))
			var peak uint64
			for b.Loop() {
				if _, err := Write(context.Background(), io.Discard, root, WithProgress(func(s Stats) {
					if s.Files%1000 == 0 {
						var m runtime.MemStats
						runtime.ReadMemStats(&m)
						peak = max(peak, m.HeapInuse)
					}
				})); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

package artifact

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/blob/s3blob"

	"github.com/activitybi/activitybi/internal/redact"
)

// defaultDirName is the folder under the data directory that holds the
// artifacts when Options.URL is empty.
const defaultDirName = "artifacts"

// schemes are the blob stores a URL may name.
var schemes = []string{"file", "s3", "mem"}

// fileOptions are how local folders are opened: private directories, each
// blob written to a temporary file next to its final name (a temporary
// directory may be on another file system, where the rename would fail), no
// .attrs sidecar files (the row holds the metadata).
func fileOptions() fileblob.Options {
	return fileblob.Options{CreateDir: true, DirFileMode: dirMode, NoTempDir: true, Metadata: fileblob.MetadataDontWrite}
}

// location is a checked Options.URL.
type location struct {
	u *url.URL
	// dir is the folder of a file:// location, "" for the others.
	dir string
}

// parseLocation checks raw, an Options.URL, and says what is wrong with it
// in terms a person configuring the core can act on. "" is the default
// folder under dataDir.
func parseLocation(raw, dataDir string) (*location, error) {
	if raw == "" {
		abs, err := filepath.Abs(filepath.Join(dataDir, defaultDirName))
		if err != nil {
			return nil, fmt.Errorf("artifact: data directory: %w", err)
		}
		return &location{u: &url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}, dir: abs}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not the URL itself, nor url.Error's message, which repeats it:
		// it may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("artifact: Options.URL is not a URL: %w (want file:///abs/dir, s3://bucket?region=..., or mem://)", err)
	}
	if u.Opaque != "" || !strings.HasPrefix(raw[len(u.Scheme):], "://") {
		return nil, fmt.Errorf("artifact: URL %s: want scheme://..., e.g. file:///abs/dir, s3://bucket?region=..., or mem://", redact.URL(raw))
	}
	if u.User != nil {
		return nil, fmt.Errorf("artifact: URL %s: credentials do not go in the URL; use the AWS environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...)", redact.URL(raw))
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("artifact: URL %s: a #fragment means nothing here", redact.URL(raw))
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" {
			return nil, fmt.Errorf("artifact: URL %s: a file URL has no host; write file:///abs/dir (three slashes)", redact.URL(raw))
		}
		p := strings.TrimSuffix(u.Path, "/")
		if p == "" || p == "/" || !path.IsAbs(p) || path.Clean(p) != p {
			return nil, fmt.Errorf("artifact: URL %s: the folder must be an absolute, clean path other than /, e.g. file:///var/lib/activitybi/artifacts", redact.URL(raw))
		}
		return &location{u: u, dir: filepath.FromSlash(p)}, nil
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("artifact: URL %s: name the bucket, e.g. s3://my-bucket?region=eu-west-1", redact.URL(raw))
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("artifact: URL %s: a key prefix goes in ?prefix=dir/, not in the path", redact.URL(raw))
		}
		return &location{u: u}, nil
	case "mem":
		return &location{u: u}, nil
	}
	return nil, fmt.Errorf("artifact: URL %s: scheme %q is not one of %s", redact.URL(raw), u.Scheme, strings.Join(schemes, ", "))
}

// openBucket opens the blob store of raw (see parseLocation). For a local
// folder it also returns the folder, so that Put can fsync it.
func openBucket(ctx context.Context, raw, dataDir string) (*blob.Bucket, string, error) {
	loc, err := parseLocation(raw, dataDir)
	if err != nil {
		return nil, "", err
	}
	// A mux of our own, not gocloud's default: only these three schemes,
	// and local folders opened with our options.
	mux := new(blob.URLMux)
	mux.RegisterBucket(fileblob.Scheme, &fileblob.URLOpener{Options: fileOptions()})
	mux.RegisterBucket(memblob.Scheme, &memblob.URLOpener{})
	mux.RegisterBucket(s3blob.Scheme, &s3blob.URLOpener{})
	if loc.dir != "" {
		// fileblob creates the folder itself, but MkdirAll's mode is then
		// lost on the parents; create them private first.
		if err := os.MkdirAll(loc.dir, dirMode); err != nil {
			return nil, "", fmt.Errorf("artifact: create %s: %w", loc.dir, err)
		}
	}
	b, err := mux.OpenBucketURL(ctx, loc.u)
	if err != nil {
		return nil, "", fmt.Errorf("artifact: open %s: %w", redact.URL(loc.u.String()), err)
	}
	root := loc.dir
	if root != "" && loc.u.Query().Get("prefix") != "" {
		root = "" // keys are then under a prefix: let syncDirs not guess
	}
	return b, root, nil
}

// syncDirs fsyncs the folder of a blob just renamed into place, and the
// root too when that folder is new (it is then a new name in the root), so
// that the blob's name survives a crash.
func syncDirs(root, key string, newDir bool) error {
	if err := syncDir(filepath.Join(root, filepath.FromSlash(path.Dir(key)))); err != nil {
		return err
	}
	if newDir {
		return syncDir(root)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

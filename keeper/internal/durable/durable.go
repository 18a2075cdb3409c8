// Package durable writes files the way the keeper needs its own files in the
// data directory: whole or not at all, and on disk before it goes on.
package durable

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with content: a crash leaves the old file
// or the new one, never half of it.
// WriteFile replaces path with content, durably: a reader sees the
// old file or the new one, and after a crash of the machine the new one.
func WriteFile(path, content string) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

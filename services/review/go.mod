module github.com/afteraction/afteraction/services/review

go 1.26
